// uPlot, in its own chunk: small canvas time-series plots (x: epoch seconds).
import uPlot from 'uplot';

/** series: [{label, color}]; data: [xs, ...one array per series]; unit: appended to y ticks. */
export function makePlot(parent, { series, unit, data, height = 170 }) {
  const width = Math.max(280, (parent.clientWidth || 400) - 4);
  return new uPlot(
    {
      width,
      height,
      legend: { live: false },
      cursor: { show: true, points: { show: false } },
      scales: { y: { range: (_u, _min, max) => [0, Math.max((max || 0) * 1.15, 1)] } },
      axes: [{ space: 70 }, { values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${unit}`), size: 56 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: s.fill, width: 1.5, spanGaps: true, points: { show: false } }))],
    },
    data,
    parent,
  );
}
