// An env variable as a form: name (new ones), type, a value input that fits the type, and a
// description. The server checks the value against its type; its reason shows in the form
// and marks the value. A stored password is never sent to the browser: left empty, the form
// sends `*****`, which keeps it.
import { useId, useState } from 'preact/hooks';
import { enc, get, put } from '../../api.js';
import { SelectField, TextField } from '../../components/form/fields.jsx';
import { FormDialog } from '../../components/form/FormDialog.jsx';

export const KEEP = '*****'; // the API's mask: sent as a password's value, keeps the stored one
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const TYPES = [
  ['string', 'string: text'],
  ['password', 'password: text, sealed, never shown'],
  ['integer', 'integer: 42'],
  ['float', 'float: 2.5'],
  ['boolean', 'boolean: true / false'],
  ['json', 'json: a JSON document'],
  ['list', 'list: a, b, c'],
];
const HINTS = {
  string: 'any text',
  integer: 'a whole number, e.g. -12 or 42',
  float: 'a number, e.g. 2.5 or 1e3',
  json: 'a JSON document, e.g. {"max": 3} or [1, 2]',
  list: 'items separated by commas: a, b, c (a script gets ["a", "b", "c"])',
};
const TRUE = ['true', 'yes', 'on', '1'];

/** The value input of one type; `invalid` marks it (aria-invalid) with the server's reason. */
function ValueField({ type, value, onValue, storedPassword, invalid, errorId }) {
  const id = useId();
  const aria = { 'aria-invalid': invalid ? 'true' : undefined, 'aria-describedby': invalid ? errorId : `${id}-hint` };
  const input = (e) => onValue(e.currentTarget.value);
  let control;
  let hint = HINTS[type];
  if (type === 'password') {
    control = (
      <input
        id={id}
        type="password"
        name="value"
        autocomplete="new-password"
        value={value}
        placeholder={storedPassword ? 'unchanged' : ''}
        onInput={input}
        {...aria}
      />
    );
    hint = storedPassword ? 'leave empty to keep the stored password; type to replace it' : 'sealed at rest; never shown again, here or anywhere';
  } else if (type === 'boolean') {
    const known = ['true', 'false'];
    const options = known.includes(value) ? known : [...known, value];
    control = (
      <select id={id} name="value" value={value} onChange={input} {...aria}>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
    hint = 'true or false';
  } else if (type === 'json' || type === 'string') {
    control = <textarea id={id} name="value" rows={type === 'json' ? 6 : 3} class="mono" spellcheck={false} value={value} onInput={input} {...aria} />;
  } else {
    const numeric = type === 'integer' ? 'numeric' : type === 'float' ? 'decimal' : undefined;
    control = <input id={id} name="value" class="mono" inputmode={numeric} spellcheck={false} value={value} onInput={input} {...aria} />;
  }
  return (
    <div class="field">
      <label for={id}>Value</label>
      {control}
      <span class="hint" id={`${id}-hint`}>
        {hint}
      </span>
    </div>
  );
}

/** The text a value input starts with when the type changes to `type`. */
function valueFor(type, value) {
  if (type !== 'boolean') return value;
  return TRUE.includes(value.trim().toLowerCase()) ? 'true' : 'false';
}

/** Whether `name` is taken: PUT would replace it, which a New form must not do unasked. */
async function exists(name) {
  try {
    await get(`/envs/${enc(name)}`);
    return true;
  } catch (exc) {
    if (exc.status === 404) return false;
    throw exc;
  }
}

export function EnvForm({ env, onSaved, onClose }) {
  const storedPassword = env?.type === 'password';
  const [form, setForm] = useState({
    name: env?.name ?? '',
    type: env?.type ?? 'string',
    value: storedPassword ? '' : env?.value ?? '',
    description: env?.description ?? '',
  });
  const [invalid, setInvalid] = useState(false);
  const errorId = useId();
  const set = (k) => (v) => {
    setInvalid(false);
    setForm((f) => (k === 'type' ? { ...f, type: v, value: valueFor(v, f.value) } : { ...f, [k]: v }));
  };
  const save = async () => {
    const name = form.name.trim();
    if (!NAME.test(name)) throw new Error('A name is 1-128 letters, digits, _ . or -.');
    if (!env && (await exists(name))) throw new Error(`There is an env variable ${name} already: edit it in the list instead.`);
    const keep = storedPassword && form.type === 'password' && form.value === '';
    const body = { type: form.type, value: keep ? KEEP : form.value, description: form.description };
    try {
      await put(`/envs/${enc(name)}`, body);
    } catch (exc) {
      setInvalid(exc.code === 'invalid_env' && !exc.message.includes('description')); // else it is not the value's fault
      throw exc;
    }
    onSaved();
  };
  return (
    <FormDialog title={env ? `Env variable ${env.name}` : 'New env variable'} onSave={save} onClose={onClose} errorId={errorId}>
      {env?.provisioned && (
        <div class="notice">
          fnhub.yaml declares this variable: a change here works until the next <code>fnhub apply</code> (or server start), which puts it back as declared.
        </div>
      )}
      <div class="form-grid">
        {!env && <TextField label="Name" name="name" value={form.name} onValue={set('name')} mono required placeholder="ERP_URL" hint="letters, digits, _ . - (up to 128)" />}
        <SelectField label="Type" name="type" value={form.type} onValue={set('type')} options={TYPES} />
      </div>
      <ValueField type={form.type} value={form.value} onValue={set('value')} storedPassword={storedPassword && form.type === 'password'} invalid={invalid} errorId={errorId} />
      <TextField label="Description" name="description" value={form.description} onValue={set('description')} hint="what it is for (shown in this list and fnhub env list)" />
    </FormDialog>
  );
}
