// Task records: filters (kept in the address, so a view can be shared), server-side paging and
// a live tail that re-reads the newest page.
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { query } from '../../api.js';
import { ErrorBox, Loading, PageHead } from '../../components/bits.jsx';
import { Pager } from '../../components/Pager.jsx';
import { useApi } from '../../hooks.js';
import { TaskFilters } from './TaskFilters.jsx';
import { TaskTable } from './TaskTable.jsx';

const LIMIT = 50;
const FILTERS = ['function', 'status', 'origin', 'origin_id', 'since', 'until'];

export function TasksPage() {
  const { query: q, route, path } = useLocation();
  const [live, setLive] = useState(false);
  const filters = Object.fromEntries(FILTERS.map((k) => [k, q[k] || '']));
  const offset = live ? 0 : Number(q.offset || 0);
  const records = useApi(`/tasks${query({ ...filters, offset, limit: LIMIT })}`, { every: live ? 2000 : 0 });
  const go = (next) => route(`${path}${query(next)}`);
  return (
    <div class="page">
      <PageHead title="Tasks">
        <label class="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live
        </label>
        <button type="button" class="small" onClick={records.reload}>
          Refresh
        </button>
      </PageHead>
      <TaskFilters value={filters} onApply={(f) => go({ ...f, offset: 0 })} />
      <ErrorBox error={records.error} />
      {!records.data && !records.error && <Loading what="task records" />}
      {records.data && (
        <>
          <TaskTable items={records.data.items} />
          <Pager offset={offset} limit={LIMIT} total={records.data.total} onPage={(o) => go({ ...filters, offset: o })} />
        </>
      )}
    </div>
  );
}
