// An endpoint as a form: the function it publishes at /e/<name>, sync or async, its auth (with
// the fields of each kind; secrets come masked and stay as stored unless retyped), throttle,
// fixed kwargs (or "the caller gives it"), cache, timeout and what callers may see.
import { useState } from 'preact/hooks';
import { enc, put } from '../../api.js';
import { CheckField, NumberField, SecretField, SelectField, TextField } from '../../components/form/fields.jsx';
import { FormDialog } from '../../components/form/FormDialog.jsx';
import { KwargsEditor, kwargsOfRows, rowsOf } from '../../components/form/KwargsEditor.jsx';
import { fromLocalInput, toLocalInput } from '../../format.js';
import { FunctionList, useFunctionRefs } from './functionRefs.jsx';

const NAME = /^[A-Za-z0-9_-]{1,128}$/;
const CALLER = '$caller';
const AUTH_KINDS = [
  ['none', 'none: anyone may call'],
  ['token', 'token in a header or query parameter'],
  ['basic', 'HTTP basic'],
  ['hmac', 'HMAC signature'],
  ['function', 'a function decides'],
];
const WINDOWS = ['second', 'minute', 'hour', 'day'];

function AuthFields({ auth, onAuth, refs }) {
  const set = (k) => (v) => onAuth({ ...auth, [k]: v });
  switch (auth.type) {
    case 'token':
      return (
        <div class="form-grid">
          <SelectField label="Where" name="auth.location" value={auth.location ?? 'header'} onValue={set('location')} options={[['header', 'header'], ['query', 'query parameter']]} />
          <TextField label="Header or parameter name" name="auth.field" value={auth.field} onValue={set('field')} placeholder="X-Token" />
          <SecretField label="Token" name="auth.token" value={auth.token} onValue={set('token')} required hint="8 characters or more" />
        </div>
      );
    case 'basic':
      return (
        <div class="form-grid">
          <TextField label="Username" name="auth.username" value={auth.username} onValue={set('username')} required />
          <SecretField label="Password" name="auth.password" value={auth.password} onValue={set('password')} required />
        </div>
      );
    case 'hmac':
      return (
        <div class="form-grid">
          <SecretField label="Secret" name="auth.secret" value={auth.secret} onValue={set('secret')} required hint="16 characters or more" />
          <NumberField label="Clock skew allowed (s)" name="auth.max_skew" value={auth.max_skew} onValue={set('max_skew')} placeholder="300" min={10} max={3600} />
        </div>
      );
    case 'function':
      return <TextField label="Auth function" name="auth.function" value={auth.function} onValue={set('function')} list="endpoint-functions" placeholder="script.function" required hint="called with request={method, path, query, headers}; truthy allows" />;
    default:
      return null;
  }
}

/** Only the fields of the chosen kind (and none left empty: the server's default applies). */
function authBody(auth) {
  return Object.fromEntries(Object.entries(auth).filter(([, v]) => v !== null && v !== undefined && v !== ''));
}

export function EndpointForm({ endpoint: e, onSaved, onClose }) {
  const refs = useFunctionRefs();
  const [name, setName] = useState(e?.name ?? '');
  const [form, setForm] = useState({
    function: e?.function ?? '',
    mode: e?.mode ?? 'sync',
    description: e?.description ?? '',
    cache_result: e?.cache_result ?? null,
    timeout: e?.timeout ?? null,
    show_traceback: e?.show_traceback ?? false,
    show_logs: e?.show_logs ?? false,
    enabled: e?.enabled ?? true,
    expires_at: e?.expires_at ?? null,
    record_limit: e?.record_limit ?? null,
  });
  const [auth, setAuth] = useState(e?.auth ?? { type: 'none' });
  const [throttle, setThrottle] = useState(e?.throttle ?? {});
  const [allFromCaller, setAllFromCaller] = useState(e ? e.kwargs === null : true);
  const [rows, setRows] = useState(rowsOf(e?.kwargs, CALLER));
  const set = (k) => (v) => setForm((f) => ({ ...f, [k]: v }));
  const save = async () => {
    if (!NAME.test(name)) throw new Error('A name is 1-128 letters, digits, _ or -.');
    const body = {
      ...Object.fromEntries(Object.entries(form).filter(([, v]) => v !== null && v !== '')),
      function: form.function.trim(),
      auth: authBody(auth),
      throttle: Object.fromEntries(WINDOWS.filter((w) => throttle[w]).map((w) => [w, throttle[w]])),
      kwargs: allFromCaller ? null : kwargsOfRows(rows, CALLER),
    };
    await put(`/endpoints/${enc(name)}`, body);
    onSaved();
  };
  return (
    <FormDialog title={e ? `Endpoint /e/${e.name}` : 'New endpoint'} onSave={save} onClose={onClose}>
      <div class="form-grid">
        {!e && <TextField label="Name" name="name" value={name} onValue={setName} required hint="the URL is /e/<name>" />}
        <TextField label="Function" name="function" value={form.function} onValue={set('function')} list="endpoint-functions" placeholder="script.function" required />
        <SelectField label="Mode" name="mode" value={form.mode} onValue={set('mode')} options={[['sync', 'sync: answer with the result'], ['async', 'async: 202 and a task to poll']]} />
      </div>
      <FunctionList id="endpoint-functions" refs={refs} />
      <TextField label="Description" name="description" value={form.description} onValue={set('description')} />
      <fieldset class="nested">
        <legend>Auth</legend>
        <SelectField label="Kind" name="auth.type" value={auth.type} onValue={(t) => setAuth(t === e?.auth?.type ? e.auth : { type: t })} options={AUTH_KINDS} />
        <AuthFields auth={auth} onAuth={setAuth} refs={refs} />
      </fieldset>
      <fieldset class="nested">
        <legend>Throttle (most calls per window; empty: no limit)</legend>
        <div class="form-grid four">
          {WINDOWS.map((w) => (
            <NumberField key={w} label={`per ${w}`} name={`throttle.${w}`} value={throttle[w]} onValue={(v) => setThrottle({ ...throttle, [w]: v })} min={1} />
          ))}
        </div>
      </fieldset>
      <CheckField label="Every argument comes from the caller (no fixed kwargs)" name="all-from-caller" value={allFromCaller} onValue={setAllFromCaller} />
      {!allFromCaller && <KwargsEditor label="Fixed kwargs" rows={rows} onRows={setRows} callerToken={CALLER} hint="only these reach the function" />}
      <div class="form-grid">
        <NumberField label="Cache results (s)" name="cache_result" value={form.cache_result} onValue={set('cache_result')} step="any" min={0} />
        <NumberField label="Timeout (s)" name="timeout" value={form.timeout} onValue={set('timeout')} step="any" min={0} placeholder="the function's" />
        <NumberField label="Record limit" name="record_limit" value={form.record_limit} onValue={set('record_limit')} min={0} hint="newest records kept" />
        <label>
          Expires
          <input type="datetime-local" name="expires_at" value={toLocalInput(form.expires_at)} onInput={(ev) => set('expires_at')(fromLocalInput(ev.currentTarget.value) || null)} />
        </label>
      </div>
      <div class="form-grid">
        <CheckField label="Show tracebacks to callers" name="show_traceback" value={form.show_traceback} onValue={set('show_traceback')} />
        <CheckField label="Show logs to async pollers" name="show_logs" value={form.show_logs} onValue={set('show_logs')} />
        <CheckField label="Enabled" name="enabled" value={form.enabled} onValue={set('enabled')} />
      </div>
    </FormDialog>
  );
}
