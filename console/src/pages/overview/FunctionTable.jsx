// The busiest and the most failing functions of the last hour: calls, failures, run-time
// percentiles, and calls per minute as a sparkline.
import { enc } from '../../api.js';
import { duration } from '../../format.js';
import { Sparkline } from './Sparkline.jsx';

export function FunctionTable({ functions }) {
  if (functions.length === 0) return <div class="empty">No task finished in the last hour.</div>;
  return (
    <table class="table functions" aria-label="Functions in the last hour">
      <thead>
        <tr>
          <th>Function</th>
          <th class="num">Calls</th>
          <th class="num">Failures</th>
          <th class="num">p50</th>
          <th class="num">p95</th>
          <th class="num">p99</th>
          <th>Calls per minute</th>
        </tr>
      </thead>
      <tbody>
        {functions.map((f) => (
          <tr key={f.function}>
            <td>
              <a href={`/tasks?function=${enc(f.function)}`}>{f.function}</a>
            </td>
            <td class="num">{f.calls}</td>
            <td class="num">
              {f.failures > 0 ? (
                <a class="warn" href={`/tasks?function=${enc(f.function)}&status=failure`}>
                  {f.failures}
                </a>
              ) : (
                0
              )}
            </td>
            <td class="num">{duration(f.p50_ms)}</td>
            <td class="num">{duration(f.p95_ms)}</td>
            <td class="num">{duration(f.p99_ms)}</td>
            <td>
              <Sparkline values={f.calls_per_minute} failures={f.failures_per_minute} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
