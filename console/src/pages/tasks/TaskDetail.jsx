// One task: what called it, with which arguments, what it returned or raised, its logs and
// timings, and every attempt (from its record; its live state until the record lands).
import { useEffect, useState } from 'preact/hooks';
import { enc } from '../../api.js';
import { ErrorBox, JsonBlock, Loading, PageHead, Pre, Status } from '../../components/bits.jsx';
import { dateTime, duration } from '../../format.js';
import { useApi } from '../../hooks.js';
import { Attempts } from './Attempts.jsx';
import { TaskOutcome } from './TaskOutcome.jsx';
import { followRecord } from './taskRecord.js';

/** The trigger, linked to the tasks it started. */
function Origin({ t }) {
  return (
    <>
      {t.origin}
      {t.origin_id && (
        <>
          {' · '}
          <a href={`/tasks?origin=${enc(t.origin)}&origin_id=${enc(t.origin_id)}`}>{t.origin_id}</a>
        </>
      )}
    </>
  );
}

/** A link to the task's dead letter, when it has one (failed tasks only ask). */
function DeadLetterLink({ id }) {
  const letter = useApi(`/dead-letters/${enc(id)}`);
  if (!letter.data) return null;
  return (
    <div class="notice">
      This task is a dead letter ({letter.data.reason}).{' '}
      <a href={`/dead-letters?q=${enc(id)}`}>Replay or discard it</a>
    </div>
  );
}

function Record({ t }) {
  const failed = ['failure', 'timeout', 'dead'].includes(t.status);
  const [script, fn] = t.function.split('.');
  return (
    <>
      <dl class="facts wide">
        <dt>Status</dt>
        <dd>
          <Status status={t.status} />
          {t.attempt > 1 && <span class="muted"> after {t.attempt} attempts</span>}
        </dd>
        <dt>Function</dt>
        <dd>
          <a href={`/tasks?function=${enc(t.function)}`}>{t.function}</a> <span class="muted mono small-print" title={t.version}>
            @{t.version.slice(0, 12)}
          </span>{' '}
          <a class="small-print" href={`/scripts/${enc(script)}/run/${enc(fn)}`}>
            run it
          </a>
        </dd>
        <dt>Origin</dt>
        <dd>
          <Origin t={t} />
        </dd>
        <dt>Queue</dt>
        <dd>{t.queue}</dd>
        <dt>Triggered</dt>
        <dd>{dateTime(t.trigger_time)}</dd>
        <dt>Started · ended</dt>
        <dd>
          {dateTime(t.start_time) || '—'} · {dateTime(t.end_time) || '—'}
        </dd>
        <dt>Waited · ran</dt>
        <dd>
          {duration(t.wait_ms) || '—'} · {duration(t.run_ms) || '—'}
        </dd>
        {t.replay_of && (
          <>
            <dt>Replay of</dt>
            <dd>
              <a href={`/tasks/${enc(t.replay_of)}`}>{t.replay_of}</a>
            </dd>
          </>
        )}
      </dl>
      {failed && <DeadLetterLink id={t.id} />}
      <JsonBlock label="Arguments (kwargs)" value={t.kwargs} />
      <TaskOutcome state={t} showLink={false} timings={false} />
      <Attempts attempts={t.attempts} />
    </>
  );
}

export function TaskDetail({ id }) {
  const [state, setState] = useState({});
  const [error, setError] = useState(null);
  useEffect(() => {
    const ctl = new AbortController();
    setState({});
    setError(null);
    followRecord(id, setState, ctl.signal).catch((exc) => exc.name !== 'AbortError' && setError(exc));
    return () => ctl.abort();
  }, [id]);
  const { record, live } = state;
  return (
    <div class="page">
      <PageHead title={`Task ${id}`}>
        <a href="/tasks" class="button small">
          All tasks
        </a>
      </PageHead>
      <ErrorBox error={error} />
      {!record && !live && !error && <Loading />}
      {record && <Record t={record} />}
      {!record && live && (
        <>
          <p class="muted">No record yet: the task is {live.status}. This page follows it.</p>
          <TaskOutcome state={live} showLink={false} />
          {live.kwargs !== undefined && <JsonBlock label="Arguments (kwargs)" value={live.kwargs} />}
        </>
      )}
      {record && record.status === 'retrying' && <Pre text="Another attempt will run: this page follows it." />}
    </div>
  );
}
