// The overview's numbers, sampled every 2 s while an overview is open and kept for 10 minutes in
// this tab: workers, queue depths, finished tasks and failures per second, run-time percentiles.
import { get } from '../../api.js';
import { store } from '../../store.js';
import { finishedByStatus, parseMetrics, quantile, runBuckets } from './prometheus.js';

const EVERY_MS = 2000;
const KEEP = 300;

export const overview = store({ workers: null, queues: null, series: [], error: null });

let timer = null;
let users = 0;
let previous = null;

async function sample() {
  try {
    const [workers, queues, text] = await Promise.all([
      get('/workers'),
      get('/queues'),
      fetch('/metrics', { credentials: 'same-origin' }).then((r) => r.text()),
    ]);
    const samples = parseMetrics(text);
    const now = Date.now() / 1000;
    const current = { t: now, done: finishedByStatus(samples), buckets: runBuckets(samples) };
    let point = null;
    if (previous) {
      const dt = now - previous.t;
      const delta = (status) => Math.max(0, (current.done[status] || 0) - (previous.done[status] || 0));
      const all = Object.keys(current.done).reduce((s, k) => s + delta(k), 0);
      const failed = ['failure', 'timeout', 'dead', 'expired'].reduce((s, k) => s + delta(k), 0);
      point = {
        t: now,
        rate: all / dt,
        failures: failed / dt,
        depth: queues.reduce((s, q) => s + q.length, 0),
        p50: quantile(previous.buckets, current.buckets, 0.5),
        p95: quantile(previous.buckets, current.buckets, 0.95),
        p99: quantile(previous.buckets, current.buckets, 0.99),
      };
    }
    previous = current;
    overview.set((o) => ({
      workers,
      queues,
      error: null,
      series: point ? [...o.series, point].slice(-KEEP) : o.series,
    }));
  } catch (error) {
    overview.set((o) => ({ ...o, error }));
  }
}

/** Start sampling (shared by every open overview); returns the function that stops it. */
export function follow() {
  users += 1;
  if (users === 1) {
    sample();
    timer = setInterval(() => document.visibilityState === 'visible' && sample(), EVERY_MS);
  }
  return () => {
    users -= 1;
    if (users === 0) clearInterval(timer);
  };
}
