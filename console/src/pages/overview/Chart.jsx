// A time-series chart (uPlot, loaded with the first chart). It keeps its canvas across
// updates: new data is handed to the plot, not re-rendered.
import { useEffect, useRef } from 'preact/hooks';

let loading = null;
const loadPlot = () => {
  loading ??= import('../../charts/uplot.js');
  return loading;
};

/** x: epoch seconds; series: [{label, color, values}] (one value per x, null for none);
 * windowS: a fixed span ending at the newest point. */
export function Chart({ title, x, series, unit = '', windowS = 0 }) {
  const el = useRef(null);
  const plot = useRef(null);
  const data = [x, ...series.map((s) => s.values)];
  const shape = series.map((s) => s.label).join('|'); // a new set of series: a new plot
  useEffect(() => {
    let gone = false;
    loadPlot().then(({ makePlot }) => {
      if (gone || !el.current) return;
      plot.current = makePlot(el.current, { series, unit, data, windowS });
    });
    return () => {
      gone = true;
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);
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
