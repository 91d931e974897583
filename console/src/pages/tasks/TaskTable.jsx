// Task records as rows: one click opens a task.
import { Empty, Status } from '../../components/bits.jsx';
import { dateTime, duration } from '../../format.js';

export function TaskTable({ items }) {
  if (items.length === 0) return <Empty>No task records match.</Empty>;
  return (
    <table class="table tasks">
      <thead>
        <tr>
          <th>Triggered</th>
          <th>Function</th>
          <th>Status</th>
          <th>Origin</th>
          <th class="num">Wait</th>
          <th class="num">Run</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {items.map((t) => (
          <tr key={t.id}>
            <td>
              <a href={`/tasks/${t.id}`}>{dateTime(t.trigger_time)}</a>
            </td>
            <td>{t.function}</td>
            <td>
              <Status status={t.status} />
            </td>
            <td class="muted">
              {t.origin}
              {t.origin_id ? ` · ${t.origin_id}` : ''}
            </td>
            <td class="num">{duration(t.wait_ms)}</td>
            <td class="num">{duration(t.run_ms)}</td>
            <td class="clip">{t.error_type ? `${t.error_type}: ${t.error_message || ''}` : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
