// Reading the few numbers the overview needs from fnhub's /metrics (Prometheus text format).

/** [{name, labels, value}] of every sample line. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Finished tasks by status, summed over queues. */
export function finishedByStatus(samples) {
  const by = {};
  for (const s of samples) {
    if (s.name === 'fnhub_tasks_total') by[s.labels.status] = (by[s.labels.status] || 0) + s.value;
  }
  return by;
}

/** Cumulative run-time buckets summed over queues: [[upper bound (s), count], ...]. */
export function runBuckets(samples) {
  const by = new Map();
  for (const s of samples) {
    if (s.name !== 'fnhub_task_run_seconds_bucket') continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    by.set(le, (by.get(le) || 0) + s.value);
  }
  return [...by.entries()].sort((a, b) => a[0] - b[0]);
}

/** The q-quantile (0..1) of the tasks counted between two cumulative bucket snapshots. */
export function quantile(before, after, q) {
  const prior = new Map(before);
  const counts = after.map(([le, n]) => [le, n - (prior.get(le) || 0)]);
  const total = counts.length ? counts[counts.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let lowerCount = 0;
  for (const [le, n] of counts) {
    if (n >= rank) {
      if (le === Infinity) return lower;
      const within = n - lowerCount;
      return within > 0 ? lower + ((le - lower) * (rank - lowerCount)) / within : le;
    }
    lower = le;
    lowerCount = n;
  }
  return lower;
}
