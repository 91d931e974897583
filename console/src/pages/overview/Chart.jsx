// A time-series chart (uPlot, loaded with the first chart).
import { useEffect, useRef } from 'preact/hooks';

let loading = null;
const loadPlot = () => {
  loading ??= import('../../charts/uplot.js');
  return loading;
};

/** series: [{label, color, value: point => number|null}] over points with .t (epoch s). */
export function Chart({ title, points, series, unit = '' }) {
  const el = useRef(null);
  const plot = useRef(null);
  const data = [points.map((p) => p.t), ...series.map((s) => points.map((p) => s.value(p)))];
  useEffect(() => {
    let gone = false;
    loadPlot().then(({ makePlot }) => {
      if (gone || !el.current) return;
      plot.current = makePlot(el.current, { series, unit, data });
    });
    return () => {
      gone = true;
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return (
    <figure class="chart card">
      <figcaption>{title}</figcaption>
      <div ref={el} class="chart-area" />
    </figure>
  );
}
