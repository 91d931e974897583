// Replay or discard every dead letter matching the page's filter: counts them first and says
// how many before anything happens, then what was done and what was skipped (and why).
import { useEffect, useState } from 'preact/hooks';
import { get, post, query } from '../../api.js';
import { ErrorBox, Loading } from '../../components/bits.jsx';
import { Dialog } from '../../components/Dialog.jsx';

const VERBS = { replay: ['Replay', 'replayed'], discard: ['Discard', 'discarded'] };

function describe(filter) {
  const parts = Object.entries(filter).map(([k, v]) => `${k} = ${v}`);
  return parts.length ? `matching ${parts.join(', ')}` : 'of every function (no filter)';
}

export function BulkDialog({ action, filter, onDone, onClose }) {
  const [count, setCount] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const [verb, past] = VERBS[action];
  useEffect(() => {
    get(`/dead-letters/count${query(filter)}`).then((r) => setCount(r.count), setError);
  }, []);
  const act = async () => {
    setBusy(true);
    setError(null);
    try {
      const empty = Object.keys(filter).length === 0;
      const out = await post(`/dead-letters/${action}`, empty ? { all: true } : filter);
      setOutcome(out);
      onDone(out);
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  const done = outcome && (outcome.replayed ?? outcome.discarded);
  return (
    <Dialog title={`${verb} dead letters`} onClose={onClose}>
      <div class="form">
        {count === null && !error && <Loading what="how many match" />}
        {count !== null && !outcome && (
          <p class="bulk-question">
            {verb} <strong>{count}</strong> dead letter{count === 1 ? '' : 's'} {describe(filter)}?
            {action === 'replay' ? ' Each runs again as a new task with the active version.' : ' They are deleted for good.'}
          </p>
        )}
        {outcome && (
          <div class="bulk-outcome">
            <p>
              {done} {past}.
              {outcome.task_ids?.length > 0 && (
                <>
                  {' '}
                  New tasks:{' '}
                  {outcome.task_ids.slice(0, 10).map((id) => (
                    <a key={id} class="mono small-print" href={`/tasks/${id}`}>
                      {id}{' '}
                    </a>
                  ))}
                  {outcome.task_ids.length > 10 ? '…' : ''}
                </>
              )}
            </p>
            {outcome.skipped.length > 0 && (
              <>
                <p class="warn">{outcome.skipped.length} skipped (they stay):</p>
                <ul class="small-print">
                  {outcome.skipped.slice(0, 20).map((s) => (
                    <li key={s.id}>
                      <span class="mono">{s.task_id}</span>: {s.reason}
                    </li>
                  ))}
                </ul>
              </>
            )}
          </div>
        )}
        <ErrorBox error={error} />
        <div class="form-actions">
          <button type="button" onClick={onClose}>
            {outcome ? 'Done' : 'Cancel'}
          </button>
          {!outcome && (
            <button type="button" class={action === 'discard' ? 'primary danger-fill' : 'primary'} disabled={busy || !count} onClick={act}>
              {busy ? `${verb}ing…` : `${verb} ${count ?? ''}`}
            </button>
          )}
        </div>
      </div>
    </Dialog>
  );
}
