// Scripts and their functions as a tree, with a filter (a project may hold a thousand
// functions: the filter matches script and function names).
import { useMemo, useState } from 'preact/hooks';
import { Loading } from '../../components/bits.jsx';

export function ScriptTree({ scripts, current, currentFn }) {
  const [filter, setFilter] = useState('');
  const shown = useMemo(() => {
    if (!scripts) return [];
    const f = filter.trim().toLowerCase();
    if (!f) return scripts.map((s) => ({ ...s, shownFunctions: s.functions }));
    return scripts
      .map((s) => {
        const own = s.name.toLowerCase().includes(f);
        const fns = s.functions.filter((fn) => own || fn.toLowerCase().includes(f));
        return { ...s, shownFunctions: fns, match: own || fns.length > 0 };
      })
      .filter((s) => s.match);
  }, [scripts, filter]);
  if (!scripts) return <Loading />;
  return (
    <div class="tree">
      <input type="search" placeholder="Filter scripts and functions" aria-label="Filter scripts" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <ul class="tree-list">
        {shown.map((s) => (
          <li key={s.name}>
            <a href={`/scripts/${s.name}`} class={s.name === current ? 'tree-script current' : 'tree-script'}>
              <span class="tree-name">{s.name}</span>
              <span class="muted">v{s.version}</span>
            </a>
            {(s.name === current || filter) && s.shownFunctions.length > 0 && (
              <ul class="tree-functions">
                {s.shownFunctions.map((fn) => (
                  <li key={fn}>
                    <a href={`/scripts/${s.name}/run/${fn}`} class={s.name === current && fn === currentFn ? 'tree-fn current' : 'tree-fn'} title={`Run ${s.name}.${fn}`}>
                      ƒ {fn}
                    </a>
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
        {shown.length === 0 && <li class="muted">{filter ? 'Nothing matches.' : 'No scripts yet.'}</li>}
      </ul>
    </div>
  );
}
