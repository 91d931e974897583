// Live workers with their processes (one per queue consumer), and the queues' depths.
import { ago } from '../../format.js';

/** A worker's processes, one line per process (a process reads every queue of its worker). */
function byProcess(children) {
  const procs = new Map();
  for (const c of children) {
    const key = c.pid ?? c.consumer;
    const p = procs.get(key) || { pid: c.pid, queues: [], pending: 0, idle: Infinity };
    p.queues.push(c.queue);
    p.pending += c.pending;
    p.idle = Math.min(p.idle, c.idle_ms);
    procs.set(key, p);
  }
  return [...procs.values()];
}

const idle = (ms) => (ms < 1000 ? 'busy just now' : `idle ${Math.round(ms / 1000)} s`);

function Processes({ children }) {
  if (!children?.length) return <span class="muted">none reading yet</span>;
  return (
    <ul class="processes">
      {byProcess(children).map((p) => (
        <li key={p.pid}>
          <span class="mono">pid {p.pid ?? '?'}</span>
          {p.pending > 0 && <span class="badge badge-running">{p.pending} running</span>}
          <span class="muted"> · {idle(p.idle)}</span>
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
