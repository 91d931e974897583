// uPlot, in its own chunk: small canvas time-series plots (x: epoch seconds).
import uPlot from 'uplot';

/** Epoch seconds → "12:35" (the charts span an hour at most: the time says enough). */
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/**
 * series: [{label, color}]; data: [xs, ...one array per series]; unit: appended to y ticks;
 * windowS: show the last this-many seconds (else the data's own span).
 */
export function makePlot(parent, { series, unit, data, height = 170, windowS = 0 }) {
  const x = windowS ? { time: true, range: (_u, _min, max) => [(max || Date.now() / 1000) - windowS, max || Date.now() / 1000] } : { time: true };
  const width = Math.max(280, (parent.clientWidth || 400) - 4);
  return new uPlot(
    {
      width,
      height,
      legend: { live: false },
      cursor: { show: true, points: { show: false } },
      scales: { x, y: { range: (_u, _min, max) => [0, Math.max((max || 0) * 1.15, 1)] } },
      axes: [{ space: 70, values: (_u, ticks) => ticks.map(clock) }, { values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${unit}`), size: 56 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: s.fill, width: 1.5, spanGaps: true, points: { show: false } }))],
    },
    data,
    parent,
  );
}
