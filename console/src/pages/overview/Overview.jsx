// The overview: live workers and their processes, queue depths, throughput, failures and run-time
// percentiles.
import { useEffect } from 'preact/hooks';
import { ErrorBox, Loading, PageHead } from '../../components/bits.jsx';
import { ago } from '../../format.js';
import { useStore } from '../../store.js';
import { Chart } from './Chart.jsx';
import { follow, overview } from './feed.js';

const ms = (v) => (v === null || v === undefined ? null : v * 1000);

function Workers({ workers }) {
  if (workers.length === 0) return <div class="error-box">No live worker: calls are refused until one runs.</div>;
  return (
    <table class="table">
      <thead>
        <tr>
          <th>Worker</th>
          <th>Host</th>
          <th>Queues</th>
          <th class="num">Processes</th>
          <th class="num">Replaced</th>
          <th>Started</th>
          <th>Heartbeat</th>
        </tr>
      </thead>
      <tbody>
        {workers.map((w) => (
          <tr key={w.id}>
            <td class="mono">{w.id}</td>
            <td>
              {w.info.host} <span class="muted">pid {w.info.pid}</span>
            </td>
            <td>{(w.info.queues || []).join(', ')}</td>
            <td class="num">{w.info.processes}</td>
            <td class="num">{w.info.replaced ?? 0}</td>
            <td>{ago(w.info.started)}</td>
            <td>{ago(w.info.beat)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Queues({ queues }) {
  return (
    <table class="table">
      <thead>
        <tr>
          <th>Queue</th>
          <th class="num">Tasks waiting or running</th>
          <th class="num">Workers</th>
        </tr>
      </thead>
      <tbody>
        {queues.map((q) => (
          <tr key={q.name}>
            <td>{q.name}</td>
            <td class="num">{q.length}</td>
            <td class={q.workers ? 'num' : 'num warn'}>{q.workers}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Overview() {
  useEffect(follow, []);
  const { workers, queues, series, error } = useStore(overview);
  const processes = (workers || []).reduce((s, w) => s + (w.info.processes || 0), 0);
  const last = series[series.length - 1];
  return (
    <div class="page">
      <PageHead title="Overview" />
      <ErrorBox error={error} />
      {!workers && !error && <Loading />}
      {workers && (
        <>
          <div class="stats">
            <div class="stat card">
              <div class="stat-value">{workers.length}</div>
              <div class="muted">workers · {processes} processes</div>
            </div>
            <div class="stat card">
              <div class="stat-value">{queues.reduce((s, q) => s + q.length, 0)}</div>
              <div class="muted">tasks in queues</div>
            </div>
            <div class="stat card">
              <div class="stat-value">{last ? last.rate.toFixed(1) : '…'}</div>
              <div class="muted">tasks / s</div>
            </div>
            <div class="stat card">
              <div class="stat-value">{last ? last.failures.toFixed(1) : '…'}</div>
              <div class="muted">failures / s</div>
            </div>
          </div>
          <div class="charts">
            <Chart title="Finished tasks per second" points={series} series={[{ label: 'all', color: '#1f6feb', value: (p) => p.rate }, { label: 'failed', color: '#d1242f', value: (p) => p.failures }]} unit="/s" />
            <Chart title="Run time" points={series} unit=" ms" series={[{ label: 'p50', color: '#1a7f37', value: (p) => ms(p.p50) }, { label: 'p95', color: '#bf8700', value: (p) => ms(p.p95) }, { label: 'p99', color: '#d1242f', value: (p) => ms(p.p99) }]} />
            <Chart title="Queue depth" points={series} series={[{ label: 'tasks', color: '#8250df', value: (p) => p.depth }]} />
          </div>
          <h2>Workers</h2>
          <Workers workers={workers} />
          <h2>Queues</h2>
          <Queues queues={queues} />
        </>
      )}
    </div>
  );
}
