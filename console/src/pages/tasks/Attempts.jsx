// Every attempt of a task, oldest first; each opens to its error, traceback and logs (the
// latest is open when there were several: the ones before it are what the outcome does not show).
import { Pre, Status } from '../../components/bits.jsx';
import { dateTime, duration } from '../../format.js';

export function Attempts({ attempts }) {
  return (
    <section class="attempts" aria-label="Attempts">
      <h2>
        Attempts <span class="muted">({attempts.length})</span>
      </h2>
      {attempts.map((a) => {
        const failed = a.error_type || a.error_message || a.traceback;
        return (
          <details key={a.attempt} class="attempt card" open={attempts.length > 1 && a === attempts[attempts.length - 1]}>
            <summary>
              <strong>#{a.attempt}</strong> <Status status={a.status} />
              <span class="muted">
                {' '}
                {dateTime(a.start_time) || 'not started'}
                {a.run_ms !== null && a.run_ms !== undefined ? ` · ran ${duration(a.run_ms)}` : ''}
                {a.wait_ms !== null && a.wait_ms !== undefined ? ` · waited ${duration(a.wait_ms)}` : ''}
              </span>
              {failed && <span class="clip attempt-error"> {a.error_type ? `${a.error_type}: ` : ''}{a.error_message || ''}</span>}
            </summary>
            <dl class="facts">
              <dt>Started</dt>
              <dd>{dateTime(a.start_time) || '—'}</dd>
              <dt>Ended</dt>
              <dd>{dateTime(a.end_time) || '—'}</dd>
            </dl>
            {(a.error_type || a.error_message) && <Pre label="Error" class="pre-error" text={`${a.error_type ? `${a.error_type}: ` : ''}${a.error_message || ''}`} />}
            <Pre label="Traceback" class="pre-error" text={a.traceback} />
            <Pre label="Logs" text={a.logs} empty="(nothing printed)" />
          </details>
        );
      })}
    </section>
  );
}
