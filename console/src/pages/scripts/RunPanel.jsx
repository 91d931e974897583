// Run a function of this script with a form built from its signature; show the outcome.
import { useState } from 'preact/hooks';
import { enc, get, post } from '../../api.js';
import { ErrorBox, Loading } from '../../components/bits.jsx';
import { useApi } from '../../hooks.js';
import { can } from '../../session.js';
import { TaskOutcome } from '../tasks/TaskOutcome.jsx';
import { fieldsOf, kwargsOf } from './runForm.js';

const FINAL = new Set(['success', 'failure', 'timeout', 'expired', 'dead', 'skipped']);

/** Queue the call, then long-poll its state until it is final. */
async function runTask(ref, kwargs, onState) {
  const submitted = await post(`/functions/${enc(ref)}/tasks`, { kwargs });
  let state = { id: submitted.id, status: 'queued', function: ref };
  onState(state);
  while (!FINAL.has(state.status)) {
    state = await get(`/tasks/${enc(submitted.id)}?wait=20`);
    onState(state);
  }
  return state;
}

function Field({ field, value, onValue }) {
  const label = (
    <span>
      <span class={field.required ? 'required-label' : undefined}>{field.name}</span>{' '}
      <span class="muted">{field.type === 'kwargs' ? '**kwargs (JSON object)' : field.annotation || 'any JSON value'}</span>
    </span>
  );
  if (field.type === 'bool') {
    return (
      <label class="check">
        <input type="checkbox" name={field.name} checked={!!value} onChange={(e) => onValue(e.currentTarget.checked)} /> {label}
      </label>
    );
  }
  if (field.type === 'json' || field.type === 'kwargs') {
    return (
      <label>
        {label}
        <textarea name={field.name} rows={3} class="mono" value={value} placeholder={field.type === 'kwargs' ? '{"key": "value"}' : 'JSON, e.g. {"a": 1} or [1, 2] or "text"'} onInput={(e) => onValue(e.currentTarget.value)} />
      </label>
    );
  }
  return (
    <label>
      {label}
      <input name={field.name} type={field.type === 'str' ? 'text' : 'number'} step={field.type === 'float' ? 'any' : '1'} value={value} onInput={(e) => onValue(e.currentTarget.value)} />
    </label>
  );
}

function RunForm({ info, user }) {
  const fields = fieldsOf(info.params);
  const [values, setValues] = useState(() => Object.fromEntries(fields.map((f) => [f.name, f.initial])));
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const skipped = info.params.filter((p) => p.kind === 'var_positional');
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let kwargs;
    try {
      kwargs = kwargsOf(fields, values);
    } catch (exc) {
      setError(exc);
      return;
    }
    setBusy(true);
    setState(null);
    try {
      await runTask(info.ref, kwargs, setState);
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="run">
      <form class="form run-form" onSubmit={submit}>
        <h3>
          {info.ref}
          <span class="muted">({info.params.map((p) => p.name).join(', ')})</span>
        </h3>
        {info.title && <p>{info.title}</p>}
        {info.doc && <p class="muted pre-wrap">{info.doc}</p>}
        {fields.map((f) => (
          <Field key={f.name} field={f} value={values[f.name]} onValue={(v) => setValues({ ...values, [f.name]: v })} />
        ))}
        {fields.length === 0 && <p class="muted">No arguments.</p>}
        {skipped.length > 0 && <p class="muted">*{skipped[0].name} cannot be passed by keyword and stays empty.</p>}
        <ErrorBox error={error} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled={busy || !can(user, 'write')}>
            {busy ? 'Running…' : 'Run'}
          </button>
        </div>
      </form>
      {state && <TaskOutcome state={state} />}
    </div>
  );
}

export function RunPanel({ script, fn, user }) {
  const functions = useApi(`/functions?script=${enc(script)}`);
  if (functions.error) return <ErrorBox error={functions.error} />;
  if (!functions.data) return <Loading what="functions" />;
  const info = functions.data.find((f) => f.name === fn) ?? (fn ? null : functions.data[0]);
  return (
    <div class="run-panel">
      <div class="toolbar">
        {functions.data.map((f) => (
          <a key={f.name} class={f === info ? 'chip current' : 'chip'} href={`/scripts/${script}/run/${f.name}`}>
            {f.name}
          </a>
        ))}
        {functions.data.length === 0 && <span class="muted">This script exports no functions.</span>}
      </div>
      {info ? <RunForm key={info.ref} info={info} user={user} /> : fn && <ErrorBox error={{ message: `No function '${fn}' in the active version of ${script}.` }} />}
    </div>
  );
}
