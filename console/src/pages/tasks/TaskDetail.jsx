// One task: its call, outcome and timings (from its status key while fresh, else its record).
import { enc } from '../../api.js';
import { ErrorBox, JsonBlock, Loading, PageHead } from '../../components/bits.jsx';
import { dateTime } from '../../format.js';
import { useApi } from '../../hooks.js';
import { TaskOutcome } from './TaskOutcome.jsx';

export function TaskDetail({ id }) {
  const task = useApi(`/tasks/${enc(id)}`);
  const t = task.data;
  const live = t && ['queued', 'running'].includes(t.status);
  return (
    <div class="page">
      <PageHead title={`Task ${id}`}>
        <a href="/tasks" class="button small">
          All tasks
        </a>
        <button type="button" class="small" onClick={task.reload}>
          Refresh
        </button>
      </PageHead>
      <ErrorBox error={task.error} />
      {!t && !task.error && <Loading />}
      {t && (
        <>
          <dl class="facts wide">
            <dt>Function</dt>
            <dd>
              <a href={`/tasks?function=${enc(t.function)}`}>{t.function}</a>
            </dd>
            <dt>Origin</dt>
            <dd>
              {t.origin}
              {t.origin_id ? ` · ${t.origin_id}` : ''}
            </dd>
            <dt>Queue</dt>
            <dd>{t.queue}</dd>
            <dt>Started</dt>
            <dd>{dateTime(t.start_time) || '—'}</dd>
            <dt>Ended</dt>
            <dd>{dateTime(t.end_time) || '—'}</dd>
          </dl>
          {t.kwargs !== undefined && <JsonBlock label="Arguments (kwargs)" value={t.kwargs} />}
          <TaskOutcome state={t} showLink={false} />
          {live && <p class="muted">Still {t.status}: refresh to see it finish.</p>}
        </>
      )}
    </div>
  );
}
