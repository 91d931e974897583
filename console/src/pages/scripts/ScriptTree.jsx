// Scripts and their functions as a tree, with a filter. A project may hold a thousand
// functions: a script's functions are drawn only while it is open (the current script, one
// opened with its arrow, or one the filter matches), and never more than LIMIT rows at once.
import { useMemo, useState } from 'preact/hooks';
import { Loading } from '../../components/bits.jsx';

const LIMIT = 300;

/** [{...script, shownFunctions, open}] for this filter, and how many rows were cut. */
function visible(scripts, filter, current, expanded) {
  const f = filter.trim().toLowerCase();
  const rows = [];
  let budget = LIMIT;
  let cut = 0;
  for (const s of scripts) {
    const own = !f || s.lower.includes(f);
    const fns = f && !own ? s.functions.filter((fn) => fn.toLowerCase().includes(f)) : s.functions;
    if (!own && fns.length === 0) continue;
    const open = s.name === current || expanded.has(s.name) || (f && !own);
    const shown = open ? fns.slice(0, Math.max(0, budget - 1)) : [];
    if (budget <= 0) {
      cut += 1;
      continue;
    }
    budget -= 1 + shown.length;
    cut += open ? fns.length - shown.length : 0;
    rows.push({ ...s, open, shownFunctions: shown, hidden: fns.length - shown.length });
  }
  return { rows, cut };
}

export function ScriptTree({ scripts, current, currentFn }) {
  const [filter, setFilter] = useState('');
  const [expanded, setExpanded] = useState(() => new Set());
  const indexed = useMemo(() => (scripts || []).map((s) => ({ ...s, lower: s.name.toLowerCase() })), [scripts]);
  const { rows, cut } = useMemo(() => visible(indexed, filter, current, expanded), [indexed, filter, current, expanded]);
  if (!scripts) return <Loading />;
  const toggle = (name) => {
    const next = new Set(expanded);
    if (next.has(name)) next.delete(name);
    else next.add(name);
    setExpanded(next);
  };
  const count = scripts.reduce((n, s) => n + s.functions.length, 0);
  return (
    <div class="tree">
      <input type="search" placeholder="Filter scripts and functions" aria-label="Filter scripts" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <div class="muted small-print tree-count">
        {scripts.length} scripts · {count} functions
      </div>
      <ul class="tree-list">
        {rows.map((s) => (
          <li key={s.name}>
            <div class="tree-row">
              <button type="button" class="tree-toggle" aria-label={s.open ? `Close ${s.name}` : `Open ${s.name}`} aria-expanded={s.open} disabled={s.functions.length === 0} onClick={() => toggle(s.name)}>
                {s.functions.length === 0 ? '' : s.open ? '▾' : '▸'}
              </button>
              <a href={`/scripts/${s.name}`} class={s.name === current ? 'tree-script current' : 'tree-script'}>
                <span class="tree-name">{s.name}</span>
                <span class="tree-meta">
                  {s.language === 'javascript' && <span class="badge" title="JavaScript">JS</span>}
                  {s.draft && <span class="badge badge-draft">draft</span>}
                  {s.version ? <span class="muted">v{s.version}</span> : null}
                </span>
              </a>
            </div>
            {s.shownFunctions.length > 0 && (
              <ul class="tree-functions">
                {s.shownFunctions.map((fn) => (
                  <li key={fn}>
                    <a href={`/scripts/${s.name}/run/${fn}`} class={s.name === current && fn === currentFn ? 'tree-fn current' : 'tree-fn'} title={`Run ${s.name}.${fn}`}>
                      ƒ {fn}
                    </a>
                  </li>
                ))}
                {s.hidden > 0 && <li class="muted small-print">… {s.hidden} more</li>}
              </ul>
            )}
          </li>
        ))}
        {rows.length === 0 && <li class="muted">{filter ? 'Nothing matches.' : 'No scripts yet.'}</li>}
      </ul>
      {cut > 0 && <p class="muted small-print">{cut} more not shown: narrow the filter.</p>}
    </div>
  );
}
