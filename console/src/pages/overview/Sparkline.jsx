// A tiny line of per-minute counts (inline SVG: no chart library for a table cell).
export function Sparkline({ values, failures, width = 120, height = 22 }) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const line = (vs) => vs.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`).join(' ');
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} aria-hidden="true">
      <polyline points={line(values)} fill="none" stroke="#1f6feb" stroke-width="1.2" />
      {failures && failures.some((v) => v > 0) && <polyline points={line(failures)} fill="none" stroke="#d1242f" stroke-width="1.2" />}
    </svg>
  );
}
