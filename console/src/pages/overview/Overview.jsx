// The overview, all from the live feed (one stream per browser, see live.js): workers and
// their processes, queue depths, calls and failures per minute over the last hour, the
// busiest functions with run-time percentiles, and the newest tasks.
import { useRef } from 'preact/hooks';
import { ErrorBox, Loading, PageHead, Stat, Status } from '../../components/bits.jsx';
import { ago, dateTime, duration } from '../../format.js';
import { useLive } from '../../live.js';
import { Chart } from './Chart.jsx';
import { FunctionTable } from './FunctionTable.jsx';
import { Queues, Workers } from './Workers.jsx';

const PALETTE = ['#1f6feb', '#8250df', '#1a7f37', '#bf8700', '#0a7ea4'];
const DEPTH_KEEP = 600; // seconds of queue depth kept while the page is open

function minutesAxis(m) {
  return Array.from({ length: m.count }, (_, i) => m.start + i * m.step);
}

/** Queue depth per snapshot while this page is open (the feed has no history of it). */
function useDepthHistory(snapshot) {
  const points = useRef([]);
  const last = useRef(null);
  if (snapshot && snapshot.at !== last.current) {
    last.current = snapshot.at;
    const depth = snapshot.queues.reduce((s, q) => s + q.length, 0);
    points.current = [...points.current, [snapshot.at, depth]].filter(([t]) => t > snapshot.at - DEPTH_KEEP);
  }
  return points.current;
}

function Tail({ tail }) {
  if (tail.length === 0) return <div class="empty">No task recorded yet.</div>;
  return (
    <table class="table tasks">
      <thead>
        <tr>
          <th>Triggered</th>
          <th>Function</th>
          <th>Status</th>
          <th>Origin</th>
          <th class="num">Run</th>
        </tr>
      </thead>
      <tbody>
        {tail.slice(0, 10).map((t) => (
          <tr key={t.id}>
            <td>
              <a href={`/tasks/${t.id}`}>{dateTime(t.trigger_time)}</a>
            </td>
            <td>{t.function}</td>
            <td>
              <Status status={t.status} />
            </td>
            <td class="muted">
              {t.origin}
              {t.origin_id ? ` · ${t.origin_id}` : ''}
            </td>
            <td class="num">{duration(t.run_ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Overview() {
  const { snapshot: s, error } = useLive();
  const depth = useDepthHistory(s);
  if (!s) {
    return (
      <div class="page">
        <PageHead title="Overview" />
        <ErrorBox error={error && { message: error }} />
        <Loading />
      </div>
    );
  }
  const processes = s.workers.reduce((n, w) => n + (w.processes || 0), 0);
  const queued = s.queues.reduce((n, q) => n + q.length, 0);
  const x = minutesAxis(s.minutes);
  const top = s.functions.slice().sort((a, b) => b.calls - a.calls).slice(0, PALETTE.length);
  const rate = s.totals.calls ? ((100 * s.totals.failures) / s.totals.calls).toFixed(1) : '0';
  return (
    <div class="page">
      <PageHead title="Overview">
        <span class="muted small-print" title={`server ${s.server}, feed tick ${s.feed.tick}`}>
          live · updated {ago(s.at)}
        </span>
      </PageHead>
      <ErrorBox error={error && { message: error }} />
      <div class="stats">
        <Stat value={s.workers.length} label={`workers · ${processes} processes`} warn={s.workers.length === 0} />
        <Stat value={queued} label="tasks in queues" />
        <Stat value={s.totals.calls.toLocaleString()} label="tasks finished, last hour" />
        <Stat value={s.totals.failures.toLocaleString()} label={`failed, last hour (${rate} %)`} warn={s.totals.failures > 0} />
      </div>
      <div class="charts">
        <Chart
          title="Tasks finished per minute"
          x={x}
          series={[
            { label: 'all', color: '#1f6feb', values: s.totals.calls_per_minute },
            { label: 'failed', color: '#d1242f', values: s.totals.failures_per_minute },
          ]}
        />
        <Chart title="Calls per minute by function" x={x} series={top.map((f, i) => ({ label: f.function, color: PALETTE[i], values: f.calls_per_minute }))} />
        <Chart title="Queue depth (while this page is open)" windowS={DEPTH_KEEP} x={depth.map((p) => p[0])} series={[{ label: 'tasks', color: '#8250df', values: depth.map((p) => p[1]) }]} />
      </div>
      <h2>Functions, last hour</h2>
      <FunctionTable functions={s.functions} />
      <h2>Workers</h2>
      <Workers workers={s.workers} />
      <div class="two-columns">
        <section>
          <h2>Queues</h2>
          <Queues queues={s.queues} />
        </section>
        <section>
          <h2>
            Newest tasks <a class="small-print" href="/tasks">all</a>
          </h2>
          <Tail tail={s.tail} />
        </section>
      </div>
    </div>
  );
}
