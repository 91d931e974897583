// Endpoints: a function published at /e/<name> with its auth, throttle and fixed kwargs, and a
// curl line to try it.
import { useState } from 'preact/hooks';
import { del, enc } from '../../api.js';
import { CopyButton, ErrorBox, PageHead } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';
import { EndpointForm } from './EndpointForm.jsx';

/** A curl line calling the endpoint as its auth expects (secrets left as placeholders). */
export function curlOf(e, origin = location.origin) {
  const url = new URL(`/e/${e.name}`, origin);
  const parts = ['curl'];
  const auth = e.auth || {};
  if (auth.type === 'token' && auth.location === 'query') url.searchParams.set(auth.field || 'token', '<token>');
  if (auth.type === 'token' && auth.location !== 'query') parts.push('-H', `'${auth.field || 'X-Token'}: <token>'`);
  if (auth.type === 'basic') parts.push('-u', `'${auth.username}:<password>'`);
  if (auth.type === 'hmac') parts.push('-H', "'X-Fnhub-Timestamp: <epoch>' -H 'X-Fnhub-Nonce: <nonce>' -H 'X-Fnhub-Signature: <hmac>'");
  const asked = Object.entries(e.kwargs || {}).filter(([, v]) => v === '$caller').map(([k]) => `"${k}": "<${k}>"`);
  parts.push('-H', "'Content-Type: application/json'", '-d', `'{${asked.join(', ')}}'`, `'${url.toString()}'`);
  return parts.join(' ');
}

/** "name from the caller · region = "eu"" (null: every argument comes from the caller) */
function kwargsText(kwargs) {
  if (kwargs === null) return 'none: every argument comes from the caller';
  const parts = Object.entries(kwargs).map(([k, v]) => (v === '$caller' ? `${k} from the caller` : `${k} = ${JSON.stringify(v)}`));
  return parts.length ? parts.join(' · ') : 'none, and the caller gives none';
}

/** "token in header X-Token", "basic (alice)", ... */
function authText(auth) {
  switch (auth?.type) {
    case 'token':
      return `token in ${auth.location === 'query' ? 'query parameter' : 'header'} ${auth.field || 'X-Token'}`;
    case 'basic':
      return `HTTP basic (${auth.username})`;
    case 'hmac':
      return `HMAC signature (clock skew ${auth.max_skew ?? 300} s)`;
    case 'function':
      return `decided by ${auth.function}`;
    default:
      return 'none: anyone may call';
  }
}

export function Endpoints({ user }) {
  const list = useNamedPages('/endpoints');
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
          <button type="button" class="primary small" onClick={() => setEditing({})}>
            New endpoint
          </button>
        )}
      </PageHead>
      <ListControls pages={list} noun="endpoint" label="endpoints" />
      <ErrorBox error={list.error} />
      {list.items && list.items.length === 0 && <div class="empty">No endpoints yet.</div>}
      {(list.items || []).map((e) => (
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
                <button type="button" class="small" onClick={() => setEditing({ endpoint: e })}>
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
            <dd>{authText(e.auth)}</dd>
            <dt>Throttle</dt>
            <dd>{Object.entries(e.throttle || {}).filter(([, v]) => v).map(([k, v]) => `${v}/${k}`).join(', ') || 'none'}</dd>
            <dt>Fixed kwargs</dt>
            <dd>{kwargsText(e.kwargs)}</dd>
          </dl>
          <div class="curl">
            <pre class="inline-pre">{curlOf(e)}</pre>
            <CopyButton text={curlOf(e)} label="Copy curl" />
          </div>
        </section>
      ))}
      {editing && <EndpointForm endpoint={editing.endpoint} onSaved={list.reload} onClose={() => setEditing(null)} />}
    </div>
  );
}
