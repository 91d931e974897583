// Live workers with their processes (one per queue consumer), and the queues' depths.
import { ago, duration } from '../../format.js';

function Processes({ children }) {
  if (!children?.length) return <span class="muted">none reading yet</span>;
  return (
    <ul class="processes">
      {children.map((c) => (
        <li key={c.consumer}>
          <span class="mono">pid {c.pid ?? '?'}</span> <span class="muted">{c.queue}</span>
          {c.pending > 0 && <span class="badge badge-running">{c.pending} running</span>}
          <span class="muted"> · idle {duration(c.idle_ms)}</span>
        </li>
      ))}
    </ul>
  );
}

export function Workers({ workers }) {
  if (workers.length === 0) return <div class="error-box">No live worker: calls are refused until one runs.</div>;
  return (
    <table class="table">
      <thead>
        <tr>
          <th>Worker</th>
          <th>Queues</th>
          <th class="num">Processes</th>
          <th>Process ids</th>
          <th class="num">Replaced</th>
          <th>Started</th>
          <th>Heartbeat</th>
        </tr>
      </thead>
      <tbody>
        {workers.map((w) => (
          <tr key={w.id}>
            <td>
              <div class="mono">{w.id}</div>
              <div class="muted">
                {w.host} · pid {w.pid}
              </div>
            </td>
            <td>{(w.queues || []).join(', ')}</td>
            <td class="num">{w.processes}</td>
            <td>
              <Processes children={w.children} />
            </td>
            <td class="num">{w.replaced ?? 0}</td>
            <td>{ago(w.started)}</td>
            <td>{ago(w.beat)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Queues({ queues }) {
  if (queues.length === 0) return <div class="empty">No queue yet.</div>;
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
