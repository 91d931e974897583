// The task records' filters: function, status, origin, time range.
import { useEffect, useState } from 'preact/hooks';
import { fromLocalInput, toLocalInput } from '../../format.js';

export const STATUSES = ['queued', 'running', 'success', 'failure', 'timeout', 'expired', 'dead', 'skipped'];
const ORIGINS = ['api', 'endpoint', 'cron', 'subscription', 'websub', 'cli'];

export function TaskFilters({ value, onApply }) {
  const [f, setF] = useState(value);
  useEffect(() => setF(value), [JSON.stringify(value)]);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const submit = (e) => {
    e.preventDefault();
    onApply(f);
  };
  const clear = () => onApply(Object.fromEntries(Object.keys(f).map((k) => [k, ''])));
  return (
    <form class="filters" onSubmit={submit} aria-label="Filter tasks">
      <label>
        Function
        <input name="function" placeholder="script.function" value={f.function} onInput={set('function')} />
      </label>
      <label>
        Status
        <select name="status" value={f.status} onChange={set('status')}>
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <label>
        Origin
        <input name="origin" list="origins" placeholder="any" value={f.origin} onInput={set('origin')} />
        <datalist id="origins">
          {ORIGINS.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      </label>
      <label>
        From
        <input type="datetime-local" name="since" value={toLocalInput(f.since)} onInput={(e) => setF({ ...f, since: fromLocalInput(e.currentTarget.value) })} />
      </label>
      <label>
        Until
        <input type="datetime-local" name="until" value={toLocalInput(f.until)} onInput={(e) => setF({ ...f, until: fromLocalInput(e.currentTarget.value) })} />
      </label>
      <div class="filter-actions">
        <button type="submit" class="primary small">
          Apply
        </button>
        <button type="button" class="small" onClick={clear}>
          Clear
        </button>
      </div>
    </form>
  );
}
