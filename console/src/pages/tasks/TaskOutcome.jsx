// What a task did: status, timings, result, captured logs, error and traceback — all as text.
import { JsonBlock, Pre, Status } from '../../components/bits.jsx';
import { dateTime, duration } from '../../format.js';

export function Timings({ state }) {
  return (
    <dl class="facts">
      <dt>Status</dt>
      <dd>
        <Status status={state.status} />
      </dd>
      {state.attempt > 1 && (
        <>
          <dt>Attempt</dt>
          <dd>{state.attempt}</dd>
        </>
      )}
      <dt>Wait</dt>
      <dd>{duration(state.wait_ms) || '—'}</dd>
      <dt>Run time</dt>
      <dd>{duration(state.run_ms) || '—'}</dd>
      <dt>Triggered</dt>
      <dd>{dateTime(state.trigger_time) || '—'}</dd>
    </dl>
  );
}

/** `timings`: false where the page shows status and times already (a task's own page). */
export function TaskOutcome({ state, showLink = true, timings = true }) {
  const final = !['queued', 'running'].includes(state.status);
  return (
    <section class="outcome card" aria-label="Outcome">
      <div class="outcome-head">
        {timings ? <Timings state={state} /> : <h3>Outcome</h3>}
        {showLink && state.id && (
          <a class="small" href={`/tasks/${state.id}`}>
            Task {state.id}
          </a>
        )}
      </div>
      {final && state.status === 'success' && <JsonBlock label="Result" value={state.result} />}
      {state.error_type || state.error_message ? (
        <Pre label="Error" class="pre-error" text={`${state.error_type ? `${state.error_type}: ` : ''}${state.error_message || ''}`} />
      ) : null}
      <Pre label="Logs" text={state.logs} empty={final ? '(nothing printed)' : ''} />
      <Pre label="Traceback" class="pre-error" text={state.traceback} />
    </section>
  );
}
