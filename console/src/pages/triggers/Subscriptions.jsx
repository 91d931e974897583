// Subscriptions (and the rules and routes built on them) with their live state on every server,
// from the live feed: connection state, holder, rate, in flight, lag, drops, processed, the
// newest message with its result or error (linked to the task that handled it), last error.
import { useState } from 'preact/hooks';
import { del, enc, put } from '../../api.js';
import { ErrorBox, PageHead, Status } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { ago } from '../../format.js';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useNamedPages } from '../../hooks.js';
import { useLive } from '../../live.js';
import { can } from '../../session.js';
import { SubscriptionForm } from './SubscriptionForm.jsx';

const EDITABLE = ['connector', 'topics', 'function', 'sql', 'mode', 'window', 'options', 'publish', 'error_publish', 'queue', 'record', 'record_limit', 'enabled', 'path'];
const bodyOf = (s) => Object.fromEntries(EDITABLE.filter((k) => s[k] !== undefined && s[k] !== null).map((k) => [k, s[k]]));

function kind(s) {
  if (s.function) return `→ ${s.function}`;
  if (s.sql) return 'rule (SQL)';
  return 'route';
}

function LastMessage({ last, name }) {
  const href = last.task_id ? `/tasks/${last.task_id}` : `/tasks?origin=subscription&origin_id=${enc(name)}`;
  return (
    <div class="last-message">
      <a href={href} title={last.task_id ? 'the task that handled it' : 'the tasks of this subscription'}>
        last message
      </a>
      <span class="muted"> {ago(last.at)} on </span>
      <code>{last.topic}</code> <Status status={last.outcome} />
      <pre class="inline-pre">{last.binary ? '(binary)' : last.text}</pre>
      {'error' in last ? <pre class="inline-pre warn">{last.error}</pre> : <pre class="inline-pre">→ {last.result}</pre>}
    </div>
  );
}

function ServerState({ s, mode, name }) {
  const facts = [
    `${s.rate_per_minute ?? 0}/min`,
    `in flight ${s.in_flight ?? 0}`,
    s.lag !== null && s.lag !== undefined ? `lag ${s.lag}` : null,
    `drops ${s.dropped ?? 0}`,
    `processed ${s.processed ?? 0}`,
  ].filter(Boolean);
  return (
    <div class="sub-state">
      <span class={s.state === 'connected' ? 'ok' : 'warn'}>{s.state || (s.subscribed ? 'subscribed' : 'standby')}</span>
      <span class="muted"> · {s.holder ? (s.holder === s.server ? 'holder' : `held by ${s.holder}`) : mode}</span>
      <span class="muted"> · {s.server}</span>
      <div class="muted">{facts.join(' · ')}</div>
      {s.last && <LastMessage last={s.last} name={name} />}
      {s.last_error && <div class="warn clip">last error: {s.last_error}</div>}
    </div>
  );
}

export function Subscriptions({ user }) {
  const list = useNamedPages('/subscriptions');
  const { snapshot } = useLive();
  const states = Object.fromEntries((snapshot?.subscriptions || []).map((s) => [s.name, s.servers]));
  const [editing, setEditing] = useState(null);
  const writable = can(user, 'write');
  const toggle = useAction(async (s) => {
    await put(`/subscriptions/${enc(s.name)}`, { ...bodyOf(s), enabled: !s.enabled });
    list.reload();
  });
  const remove = useAction(
    async (name) => {
      await del(`/subscriptions/${enc(name)}`);
      list.reload();
    },
    { done: 'Deleted' },
  );
  return (
    <div class="page">
      <PageHead title="Subscriptions, rules and routes">
        {writable && (
          <button type="button" class="primary small" onClick={() => setEditing({})}>
            New subscription
          </button>
        )}
      </PageHead>
      <ListControls pages={list} noun="subscription" label="subscriptions" />
      <ErrorBox error={list.error} />
      {list.items && list.items.length === 0 && <div class="empty">No subscriptions yet.</div>}
      {list.items && list.items.length > 0 && (
        <table class="table subs">
          <thead>
            <tr>
              <th>Name</th>
              <th>Connector · topics</th>
              <th>Handler</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.items.map((s) => (
              <tr key={s.name}>
                <td>
                  {s.name}
                  <div class="muted">
                    {s.mode}, window {s.window}
                    {s.provisioned ? ', from fnhub.yaml' : ''}
                  </div>
                </td>
                <td>
                  {s.connector}
                  <div class="mono small-print">{s.topics.join(', ')}</div>
                </td>
                <td>{kind(s)}</td>
                <td>
                  {!s.enabled && <span class="badge badge-skipped">paused</span>}
                  {(states[s.name] || []).map((st) => (
                    <ServerState key={st.server} s={st} mode={s.mode} name={s.name} />
                  ))}
                  {s.enabled && snapshot && !(states[s.name] || []).length && <span class="muted">no server runs it yet</span>}
                </td>
                <td class="actions">
                  {writable && (
                    <>
                      <button type="button" class="small" disabled={toggle.busy} onClick={() => toggle.run(s)}>
                        {s.enabled ? 'Pause' : 'Resume'}
                      </button>
                      {!s.provisioned && (
                        <>
                          <button type="button" class="small" onClick={() => setEditing({ subscription: s })}>
                            Edit
                          </button>
                          <button type="button" class="small danger" onClick={() => confirmAction(`Delete subscription ${s.name}?`) && remove.run(s.name)}>
                            Delete
                          </button>
                        </>
                      )}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && <SubscriptionForm subscription={editing.subscription} onSaved={list.reload} onClose={() => setEditing(null)} />}
    </div>
  );
}
