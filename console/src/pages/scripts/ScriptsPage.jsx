// Scripts: the tree of scripts and their functions on the left, the chosen script on the right
// (code, history, run).
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
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

export function ScriptsPage({ name, tab = '', fn, user }) {
  const scripts = useApi('/scripts');
  const [creating, setCreating] = useState(false);
  const { route } = useLocation();
  const known = scripts.data?.find((s) => s.name === name);
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
            {tab === '' && <ScriptEditor key={name} name={name} known={known} user={user} onPublished={scripts.reload} />}
            {tab === 'history' && <History key={name} name={name} user={user} onRolledBack={scripts.reload} />}
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
            route(`/scripts/${n}`);
          }}
        />
      )}
    </div>
  );
}
