// A plain table over objects: each column picks or renders a value, shown as text.
import { Empty } from './bits.jsx';

function cell(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function DataTable({ rows, columns, empty = 'Nothing yet.', rowKey = (r, i) => r.id ?? r.name ?? i }) {
  if (!rows || rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <table class="table">
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c.label} class={c.num ? 'num' : ''}>
              {c.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={rowKey(r, i)}>
            {columns.map((c) => (
              <td key={c.label} class={c.num ? 'num' : c.class || ''}>
                {c.render ? c.render(r) : cell(r[c.key])}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
