// Subscriptions (and the rules and routes built on them) with their live state on every server:
// holder, connected, rate, in flight, lag, drops, last message and its result, last error.
import { useState } from 'preact/hooks';
import { del, enc, get, put } from '../../api.js';
import { ErrorBox, PageHead, Status } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { JsonDialog } from '../../components/JsonDialog.jsx';
import { ago } from '../../format.js';
import { useAction, useApi, useInterval } from '../../hooks.js';
import { can } from '../../session.js';

const TEMPLATE = { connector: 'mqtt', topics: ['sensors/#'], function: 'script.handler', mode: 'single', window: 100, enabled: true };
const HELP =
  'function: the handler (script.function); or sql: a rule; or publish: {topic, connector} alone ' +
  'for a route. mode: single (one holder) or multiple. A rule or route whose output feeds ' +
  'another subscription back is refused with the cycle it would make.';
const EDITABLE = ['connector', 'topics', 'function', 'sql', 'mode', 'window', 'options', 'publish', 'error_publish', 'queue', 'record', 'record_limit', 'enabled'];

const bodyOf = (s) => Object.fromEntries(EDITABLE.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));

function kind(s) {
  if (s.function) return `→ ${s.function}`;
  if (s.sql) return 'rule (SQL)';
  return 'route';
}

function useStates(names) {
  const [states, setStates] = useState({});
  const load = () =>
    Promise.all(names.map((n) => get(`/subscriptions/${enc(n)}/status`).then((s) => [n, s.servers], () => [n, null]))).then((pairs) => setStates(Object.fromEntries(pairs)));
  useInterval(load, names.length ? 2000 : 0);
  return states;
}

function lastMessage(last) {
  const entries = Object.entries(last || {});
  if (entries.length === 0) return null;
  return entries.reduce((a, b) => (b[1].at > a[1].at ? b : a));
}

function ServerState({ s, name }) {
  const src = s.source || {};
  const last = lastMessage(s.last);
  const facts = [
    `${s.rate_per_minute ?? 0}/min`,
    `in flight ${src.in_flight ?? 0}`,
    src.lag !== null && src.lag !== undefined ? `lag ${src.lag}` : null,
    `drops ${src.dropped ?? 0}`,
    `processed ${s.processed ?? 0}`,
  ].filter(Boolean);
  return (
    <div class="sub-state">
      <span class={src.state === 'connected' ? 'ok' : 'warn'}>{src.state || (s.subscribed ? 'subscribed' : 'standby')}</span>
      <span class="muted"> · {s.holder ? (s.holder === s.server ? 'holder' : `held by ${s.holder}`) : s.mode}</span>
      <span class="muted"> · {s.server}</span>
      <div class="muted">{facts.join(' · ')}</div>
      {last && (
        <div class="last-message">
          <a href={`/tasks?origin=subscription&origin_id=${enc(name)}`}>last message</a>
          <span class="muted"> {ago(last[1].at)} on </span>
          <code>{last[1].topic}</code> <Status status={last[0]} />
          <pre class="inline-pre">{last[1].message?.text ?? `(binary) ${last[1].message?.base64 ?? ''}`}</pre>
          {'error' in last[1] ? <pre class="inline-pre warn">{last[1].error}</pre> : <pre class="inline-pre">→ {JSON.stringify(last[1].result)}</pre>}
        </div>
      )}
      {s.last_error && <div class="warn clip">last error: {s.last_error}</div>}
    </div>
  );
}

export function Subscriptions({ user }) {
  const list = useApi('/subscriptions');
  const names = (list.data || []).map((s) => s.name);
  const states = useStates(names);
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
          <button type="button" class="primary small" onClick={() => setEditing({ value: TEMPLATE })}>
            New subscription
          </button>
        )}
      </PageHead>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 && <div class="empty">No subscriptions yet.</div>}
      {list.data && list.data.length > 0 && (
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
            {list.data.map((s) => (
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
                  {(states[s.name] || []).map((st, i) => (
                    <ServerState key={i} s={st} name={s.name} />
                  ))}
                  {s.enabled && states[s.name] && states[s.name].length === 0 && <span class="muted">no server runs it yet</span>}
                </td>
                <td class="actions">
                  {writable && (
                    <>
                      <button type="button" class="small" disabled={toggle.busy} onClick={() => toggle.run(s)}>
                        {s.enabled ? 'Pause' : 'Resume'}
                      </button>
                      <button type="button" class="small" onClick={() => setEditing({ name: s.name, value: bodyOf(s) })}>
                        Edit
                      </button>
                      <button type="button" class="small danger" onClick={() => confirmAction(`Delete subscription ${s.name}?`) && remove.run(s.name)}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && (
        <JsonDialog
          title={editing.name ? `Subscription ${editing.name}` : 'New subscription'}
          value={editing.value}
          help={HELP}
          withName={!editing.name}
          namePattern={/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/}
          onSave={async (body, name) => {
            await put(`/subscriptions/${enc(editing.name || name)}`, body);
            list.reload();
          }}
          onClose={() => setEditing(null)}
        />
      )}
    </div>
  );
}
