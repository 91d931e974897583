// A row of filters applied together (Apply or Enter); the values live in the page's address,
// so a filtered view can be shared. Fields: text, select (options), time (epoch seconds).
import { useEffect, useState } from 'preact/hooks';
import { fromLocalInput, toLocalInput } from '../format.js';

function Field({ field, value, onValue }) {
  const { name, label, type = 'text' } = field;
  if (type === 'select') {
    return (
      <label>
        {label}
        <select name={name} value={value} onChange={(e) => onValue(e.currentTarget.value)}>
          <option value="">any</option>
          {field.options.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      </label>
    );
  }
  if (type === 'time') {
    return (
      <label>
        {label}
        <input type="datetime-local" name={name} value={toLocalInput(value)} onInput={(e) => onValue(fromLocalInput(e.currentTarget.value))} />
      </label>
    );
  }
  return (
    <label>
      {label}
      <input name={name} placeholder={field.placeholder || 'any'} list={field.list ? `${name}-list` : undefined} value={value} onInput={(e) => onValue(e.currentTarget.value)} />
      {field.list && (
        <datalist id={`${name}-list`}>
          {field.list.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      )}
    </label>
  );
}

/** fields: [{name, label, type?, options?, list?, placeholder?}]; value: {name: text}. */
export function FilterBar({ fields, value, onApply, label = 'Filters', children }) {
  const [f, setF] = useState(value);
  useEffect(() => setF(value), [JSON.stringify(value)]);
  const submit = (e) => {
    e.preventDefault();
    onApply(f);
  };
  const clear = () => onApply(Object.fromEntries(fields.map((x) => [x.name, ''])));
  return (
    <form class="filters" onSubmit={submit} aria-label={label}>
      {fields.map((field) => (
        <Field key={field.name} field={field} value={f[field.name] ?? ''} onValue={(v) => setF({ ...f, [field.name]: v })} />
      ))}
      <div class="filter-actions">
        <button type="submit" class="primary small">
          Apply
        </button>
        <button type="button" class="small" onClick={clear}>
          Clear
        </button>
        {children}
      </div>
    </form>
  );
}

/** The filters named by `fields` as found in the address's query. */
export function filtersFrom(q, fields) {
  return Object.fromEntries(fields.map((f) => [f.name, q[f.name] || '']));
}
