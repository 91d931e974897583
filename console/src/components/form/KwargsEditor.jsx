// Fixed keyword arguments as rows of name and value. A value is read as JSON when it is JSON
// (42, true, [1, 2], {"a": 1}, "text") and as plain text otherwise. With `callerToken`, a row
// can say "the caller gives it" (an endpoint's `$caller`).
import { useState } from 'preact/hooks';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function toText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** rows → {name: value}; throws an Error naming a bad or repeated name. */
export function kwargsOfRows(rows, callerToken) {
  const out = {};
  for (const r of rows) {
    if (!r.name && !r.text && !r.caller) continue;
    if (!NAME.test(r.name)) throw new Error(`'${r.name}' is not an argument name`);
    if (r.name in out) throw new Error(`'${r.name}' is given twice`);
    out[r.name] = r.caller ? callerToken : parseValue(r.text);
  }
  return out;
}

export function rowsOf(kwargs, callerToken) {
  return Object.entries(kwargs || {}).map(([name, value]) =>
    callerToken && value === callerToken ? { name, text: '', caller: true } : { name, text: toText(value), caller: false },
  );
}

/** rows: [{name, text, caller}] (kept by the caller: rowsOf / kwargsOfRows convert). */
export function KwargsEditor({ label, rows, onRows, callerToken, hint }) {
  const [focus, setFocus] = useState(null);
  const set = (i, patch) => onRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset class="kwargs">
      <legend>
        {label}
        {hint && <span class="muted hint"> {hint}</span>}
      </legend>
      {rows.length === 0 && <p class="muted small-print">None.</p>}
      {rows.map((r, i) => (
        <div class="kwargs-row" key={i}>
          <input aria-label={`${label}: name ${i + 1}`} placeholder="name" value={r.name} onInput={(e) => set(i, { name: e.currentTarget.value })} autofocus={focus === i} />
          <input
            aria-label={`${label}: value ${i + 1}`}
            class="mono"
            placeholder={r.caller ? 'from the caller' : 'value (JSON or text)'}
            value={r.caller ? '' : r.text}
            disabled={r.caller}
            onInput={(e) => set(i, { text: e.currentTarget.value })}
          />
          {callerToken && (
            <label class="check small-print">
              <input type="checkbox" checked={r.caller} onChange={(e) => set(i, { caller: e.currentTarget.checked })} /> caller gives it
            </label>
          )}
          <button type="button" class="small" aria-label={`Remove ${r.name || 'row'}`} onClick={() => onRows(rows.filter((_, j) => j !== i))}>
            ×
          </button>
        </div>
      ))}
      <button
        type="button"
        class="small"
        onClick={() => {
          setFocus(rows.length);
          onRows([...rows, { name: '', text: '', caller: false }]);
        }}
      >
        Add argument
      </button>
    </fieldset>
  );
}
