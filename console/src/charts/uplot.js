// uPlot, in its own chunk: a small canvas time-series plot over the last ten minutes.
import uPlot from 'uplot';

const WINDOW_S = 600;

export function makePlot(parent, { series, unit, data }) {
  const width = Math.max(280, (parent.clientWidth || 400) - 4);
  return new uPlot(
    {
      width,
      height: 170,
      legend: { live: false },
      cursor: { show: true, points: { show: false } },
      scales: {
        x: { time: true, range: (_u, _min, max) => [(max || Date.now() / 1000) - WINDOW_S, max || Date.now() / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max((max || 0) * 1.15, 1)] },
      },
      axes: [{ space: 70 }, { values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${unit}`), size: 64 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true, points: { show: false } }))],
    },
    data,
    parent,
  );
}
