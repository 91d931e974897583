// One dead letter in full: why it died, the call (function, kwargs, queue, timeout, retries)
// and its trigger; replay or discard it from here.
import { enc } from '../../api.js';
import { ErrorBox, JsonBlock, Loading } from '../../components/bits.jsx';
import { Dialog } from '../../components/Dialog.jsx';
import { dateTime } from '../../format.js';
import { useApi } from '../../hooks.js';

export function LetterDialog({ id, writable, onReplay, onDiscard, onClose }) {
  const letter = useApi(`/dead-letters/${enc(id)}`);
  const d = letter.data;
  return (
    <Dialog title="Dead letter" onClose={onClose} wide>
      <ErrorBox error={letter.error} />
      {!d && !letter.error && <Loading />}
      {d && (
        <div class="form">
          <dl class="facts wide">
            <dt>Task</dt>
            <dd>
              <a href={`/tasks/${enc(d.task_id)}`}>{d.task_id}</a>
            </dd>
            <dt>Function</dt>
            <dd>
              {d.function}{' '}
              <span class="muted mono small-print" title={d.version}>
                @{(d.version || '').slice(0, 12)}
              </span>
            </dd>
            <dt>Died</dt>
            <dd>{dateTime(d.dead_at)}</dd>
            <dt>Why</dt>
            <dd class="pre-wrap warn">{d.reason}</dd>
            <dt>Trigger</dt>
            <dd>
              {d.origin}
              {d.origin_id ? ` · ${d.origin_id}` : ''} · queue {d.queue} · triggered {dateTime(d.trigger_time)}
            </dd>
            <dt>Attempts</dt>
            <dd>
              {d.attempt} of at most {d.max_attempts} (retries {d.retries ?? 0}, timeout {d.timeout} s)
            </dd>
          </dl>
          <JsonBlock label="Arguments (kwargs)" value={d.kwargs} />
          <JsonBlock label="Meta" value={d.meta} />
          {writable && (
            <div class="form-actions">
              <button type="button" class="danger" onClick={() => onDiscard(d)}>
                Discard
              </button>
              <button type="button" class="primary" onClick={() => onReplay(d)}>
                Replay
              </button>
            </div>
          )}
        </div>
      )}
    </Dialog>
  );
}
