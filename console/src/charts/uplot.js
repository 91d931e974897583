// uPlot, in its own chunk: a small canvas time-series plot.
import uPlot from 'uplot';

export function makePlot(parent, { series, unit, data }) {
  const width = Math.max(300, parent.clientWidth || 400);
  return new uPlot(
    {
      width,
      height: 180,
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.1, 1e-9)] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${unit}`), size: 60 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true }))],
    },
    data,
    parent,
  );
}
