// Form fields that report typed values: text, number (empty → null), checkbox, select, and
// secret (a stored secret comes as the mask `********`; left alone it is sent back as the mask,
// which keeps the stored value: the secret itself never reaches the browser).
import { cloneElement } from 'preact';
import { useId, useState } from 'preact/hooks';

export const MASK = '********';

/** A label tied to its control by id (not wrapped around it: a select's options would become
 * part of the label's text). `children`: one control element. */
function Label({ label, required, hint, children }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id} class={required ? 'required-label' : undefined} title={required ? 'required' : undefined}>
        {label}
      </label>
      {cloneElement(children, { id })}
      {hint && <span class="hint">{hint}</span>}
    </div>
  );
}

export function TextField({ label, name, value, onValue, required, hint, placeholder, list, multiline = false, rows = 3, mono = false }) {
  const props = {
    name,
    value: value ?? '',
    placeholder,
    required,
    list,
    class: mono ? 'mono' : undefined,
    onInput: (e) => onValue(e.currentTarget.value),
    spellcheck: false,
  };
  return (
    <Label label={label} required={required} hint={hint}>
      {multiline ? <textarea rows={rows} {...props} /> : <input {...props} />}
    </Label>
  );
}

/** A number, or null when empty (the server's default applies). */
export function NumberField({ label, name, value, onValue, required, hint, placeholder, step = '1', min, max }) {
  return (
    <Label label={label} required={required} hint={hint}>
      <input
        type="number"
        name={name}
        step={step}
        min={min}
        max={max}
        value={value ?? ''}
        placeholder={placeholder}
        required={required}
        onInput={(e) => onValue(e.currentTarget.value === '' ? null : Number(e.currentTarget.value))}
      />
    </Label>
  );
}

export function CheckField({ label, name, value, onValue, hint }) {
  return (
    <label class="check">
      <input type="checkbox" name={name} checked={!!value} onChange={(e) => onValue(e.currentTarget.checked)} /> {label}
      {hint && <span class="muted hint"> {hint}</span>}
    </label>
  );
}

/** options: [value] or [[value, label]]; `empty` adds a first choice meaning "none". */
export function SelectField({ label, name, value, onValue, options, required, hint, empty }) {
  return (
    <Label label={label} required={required} hint={hint}>
      <select name={name} value={value ?? ''} onChange={(e) => onValue(e.currentTarget.value === '' ? null : e.currentTarget.value)}>
        {empty !== undefined && <option value="">{empty}</option>}
        {options.map((o) => {
          const [v, text] = Array.isArray(o) ? o : [o, o];
          return (
            <option key={v} value={v}>
              {text}
            </option>
          );
        })}
      </select>
    </Label>
  );
}

/**
 * A secret: empty input over a stored one (the mask) keeps it; typing replaces it; "Remove"
 * sends null. The value handed back is the mask, the new text, or null.
 */
export function SecretField({ label, name, value, onValue, required, hint }) {
  const [stored] = useState(value === MASK);
  const keeping = value === MASK;
  return (
    <div class="secret">
      <Label label={label} required={required && !stored} hint={hint}>
        <input
          type="password"
          name={name}
          autocomplete="new-password"
          value={keeping ? '' : value ?? ''}
          placeholder={keeping ? 'unchanged' : stored ? 'removed' : ''}
          title={keeping ? 'the stored secret stays unless you type a new one' : undefined}
          onInput={(e) => onValue(e.currentTarget.value === '' && stored ? MASK : e.currentTarget.value)}
        />
      </Label>
        {stored && keeping && (
          <button type="button" class="small" onClick={() => onValue(null)}>
            Remove
          </button>
        )}
        {stored && !keeping && (
          <button type="button" class="small" onClick={() => onValue(MASK)}>
            Keep stored
          </button>
        )}
    </div>
  );
}
