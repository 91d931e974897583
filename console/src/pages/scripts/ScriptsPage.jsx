// Scripts: the tree of scripts and their functions on the left, the chosen script on the right
// (code, history, run).
import { useLocation } from 'preact-iso';
import { useMemo, useState } from 'preact/hooks';
import { ErrorBox } from '../../components/bits.jsx';
import { useApi } from '../../hooks.js';
import { can } from '../../session.js';
import { History } from './History.jsx';
import { NewScript } from './NewScript.jsx';
import { RunPanel } from './RunPanel.jsx';
import { ScriptEditor } from './ScriptEditor.jsx';
import { ScriptTree } from './ScriptTree.jsx';

const TABS = [
  ['', 'Code'],
  ['history', 'History'],
  ['run', 'Run'],
];

/** The published scripts and the drafts as one list: a draft-only script has no version. */
function withDrafts(scripts, drafts) {
  if (!scripts) return undefined;
  const drafted = new Set((drafts || []).map((d) => d.script));
  const merged = scripts.map((s) => ({ ...s, draft: drafted.has(s.name) }));
  const known = new Set(scripts.map((s) => s.name));
  for (const d of drafts || []) {
    if (!known.has(d.script)) merged.push({ name: d.script, version: null, functions: [], draft: true });
  }
  return merged.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function ScriptsPage({ name, tab = '', fn, user }) {
  const published = useApi('/scripts');
  const drafts = useApi('/drafts');
  const all = useMemo(() => withDrafts(published.data, drafts.data), [published.data, drafts.data]);
  const scripts = { data: all, error: published.error || drafts.error };
  const reload = () => {
    published.reload();
    drafts.reload();
  };
  const [creating, setCreating] = useState(false);
  const { route } = useLocation();
  return (
    <div class="split">
      <aside class="split-side">
        <div class="side-head">
          <h1>Scripts</h1>
          {can(user, 'write') && (
            <button type="button" class="small" onClick={() => setCreating(true)}>
              New script
            </button>
          )}
        </div>
        <ErrorBox error={scripts.error} />
        <ScriptTree scripts={scripts.data} current={name} currentFn={tab === 'run' ? fn : null} />
      </aside>
      <section class="split-main">
        {!name ? (
          <div class="empty">
            Choose a script on the left{can(user, 'write') ? ', or create a new one' : ''}.
          </div>
        ) : (
          <>
            <div class="tabs" role="tablist">
              <h2 class="tabs-title">{name}</h2>
              {TABS.map(([key, label]) => (
                <a key={key} role="tab" aria-selected={tab === key} class={tab === key ? 'tab current' : 'tab'} href={`/scripts/${name}${key ? `/${key}` : ''}`}>
                  {label}
                </a>
              ))}
            </div>
            {tab === '' && <ScriptEditor key={name} name={name} user={user} onPublished={reload} onDraftSaved={drafts.reload} />}
            {tab === 'history' && <History key={name} name={name} user={user} onRolledBack={reload} />}
            {tab === 'run' && <RunPanel key={`${name}.${fn}`} script={name} fn={fn} user={user} />}
          </>
        )}
      </section>
      {creating && (
        <NewScript
          existing={scripts.data || []}
          onClose={() => setCreating(false)}
          onCreate={(n) => {
            setCreating(false);
            drafts.reload();
            route(`/scripts/${n}`);
          }}
        />
      )}
    </div>
  );
}
