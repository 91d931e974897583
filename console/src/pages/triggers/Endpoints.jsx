// Endpoints: a function published at /e/<name> with its auth, throttle and fixed kwargs, and a
// curl line to try it.
import { useState } from 'preact/hooks';
import { del, enc, put } from '../../api.js';
import { CopyButton, ErrorBox, PageHead } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { JsonDialog } from '../../components/JsonDialog.jsx';
import { useAction, useApi } from '../../hooks.js';
import { can } from '../../session.js';

const TEMPLATE = { function: 'script.function', mode: 'sync', kwargs: null, auth: { type: 'none' }, throttle: { second: 10 }, enabled: true };
const EDITABLE = ['function', 'mode', 'description', 'kwargs', 'auth', 'throttle', 'cache_result', 'timeout', 'show_traceback', 'enabled', 'expires_at', 'record_limit'];
const HELP =
  'mode: sync | async. kwargs: fixed values ("$caller" lets the caller fill one; null: all from the caller). ' +
  'auth: {"type": "none"} | token {location, field, token} | basic {username, password} | hmac {secret} | function {function}. ' +
  'throttle: {second, minute, hour, day}. Secrets show as ******** and stay as stored when sent back.';

/** A curl line calling the endpoint as its auth expects (secrets left as placeholders). */
export function curlOf(e, origin = location.origin) {
  const url = new URL(`/e/${e.name}`, origin);
  const parts = ['curl'];
  const auth = e.auth || {};
  if (auth.type === 'token' && auth.location === 'query') url.searchParams.set(auth.field || 'token', '<token>');
  if (auth.type === 'token' && auth.location !== 'query') parts.push('-H', `'${auth.field || 'X-Token'}: <token>'`);
  if (auth.type === 'basic') parts.push('-u', `'${auth.username}:<password>'`);
  if (auth.type === 'hmac') parts.push('-H', "'X-Fnhub-Timestamp: <epoch>' -H 'X-Fnhub-Nonce: <nonce>' -H 'X-Fnhub-Signature: <hmac>'");
  parts.push('-H', "'Content-Type: application/json'", '-d', "'{}'", `'${url.toString()}'`);
  return parts.join(' ');
}

const bodyOf = (e) => Object.fromEntries(EDITABLE.filter((k) => e[k] !== undefined).map((k) => [k, e[k]]));

export function Endpoints({ user }) {
  const list = useApi('/endpoints');
  const [editing, setEditing] = useState(null);
  const writable = can(user, 'write');
  const remove = useAction(async (name) => {
    await del(`/endpoints/${enc(name)}`);
    list.reload();
  }, { done: 'Deleted' });
  return (
    <div class="page">
      <PageHead title="Endpoints">
        {writable && (
          <button type="button" class="primary small" onClick={() => setEditing({ value: TEMPLATE })}>
            New endpoint
          </button>
        )}
      </PageHead>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 && <div class="empty">No endpoints yet.</div>}
      {(list.data || []).map((e) => (
        <section class="card endpoint" key={e.name}>
          <div class="endpoint-head">
            <h3>
              <code>/e/{e.name}</code> → {e.function}
            </h3>
            <span class="badge">{e.mode}</span>
            {!e.enabled && <span class="badge badge-skipped">disabled</span>}
            <span class="spacer" />
            {writable && (
              <>
                <button type="button" class="small" onClick={() => setEditing({ name: e.name, value: bodyOf(e) })}>
                  Edit
                </button>
                <button type="button" class="small danger" onClick={() => confirmAction(`Delete endpoint ${e.name}?`) && remove.run(e.name)}>
                  Delete
                </button>
              </>
            )}
          </div>
          {e.description && <p class="muted">{e.description}</p>}
          <dl class="facts wide">
            <dt>Auth</dt>
            <dd>
              <code>{JSON.stringify(e.auth)}</code>
            </dd>
            <dt>Throttle</dt>
            <dd>{Object.entries(e.throttle || {}).filter(([, v]) => v).map(([k, v]) => `${v}/${k}`).join(', ') || 'none'}</dd>
            <dt>Fixed kwargs</dt>
            <dd>
              <code>{e.kwargs === null ? 'all from the caller' : JSON.stringify(e.kwargs)}</code>
            </dd>
          </dl>
          <div class="curl">
            <pre class="inline-pre">{curlOf(e)}</pre>
            <CopyButton text={curlOf(e)} label="Copy curl" />
          </div>
        </section>
      ))}
      {editing && (
        <JsonDialog
          title={editing.name ? `Endpoint ${editing.name}` : 'New endpoint'}
          value={editing.value}
          help={HELP}
          withName={!editing.name}
          namePattern={/^[A-Za-z0-9_-]{1,128}$/}
          onSave={async (body, name) => {
            await put(`/endpoints/${enc(editing.name || name)}`, body);
            list.reload();
          }}
          onClose={() => setEditing(null)}
        />
      )}
    </div>
  );
}
