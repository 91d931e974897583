// Task records: filters (kept in the address, so a view can be shared), keyset pages read
// from the server, and a Live switch that re-reads the first page whenever the live feed
// shows a new or changed record.
import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { query } from '../../api.js';
import { ErrorBox, Loading, PageHead } from '../../components/bits.jsx';
import { FilterBar, filtersFrom } from '../../components/FilterBar.jsx';
import { Pager } from '../../components/Pager.jsx';
import { useCursorPages } from '../../hooks.js';
import { useLive } from '../../live.js';
import { TaskTable } from './TaskTable.jsx';

export const STATUSES = ['queued', 'running', 'retrying', 'success', 'failure', 'timeout', 'expired', 'dead', 'skipped'];
const ORIGINS = ['api', 'endpoint', 'cron', 'subscription', 'websub', 'cli'];
const FIELDS = [
  { name: 'function', label: 'Function', placeholder: 'script.function' },
  { name: 'status', label: 'Status', type: 'select', options: STATUSES },
  { name: 'origin', label: 'Origin', list: ORIGINS },
  { name: 'origin_id', label: 'Origin id', placeholder: 'job, subscription…' },
  { name: 'q', label: 'Error text', placeholder: 'in type or message' },
  { name: 'since', label: 'From', type: 'time' },
  { name: 'until', label: 'Until', type: 'time' },
];

/** Calls `onChange` when the feed's newest records change (mounted only while Live is on). */
function FollowFeed({ onChange }) {
  const { snapshot } = useLive();
  const mark = snapshot ? snapshot.tail.map((t) => `${t.id}:${t.status}`).join() : '';
  useEffect(() => {
    if (mark) onChange();
  }, [mark]);
  return null;
}

export function TasksPage() {
  const { query: q, route, path } = useLocation();
  const [live, setLive] = useState(false);
  const filters = filtersFrom(q, FIELDS);
  const pages = useCursorPages('/tasks', filters);
  const go = (next) => route(`${path}${query(next)}`);
  const items = pages.data?.items;
  return (
    <div class="page">
      <PageHead title="Tasks">
        <label class="check">
          <input
            type="checkbox"
            checked={live}
            onChange={(e) => {
              setLive(e.currentTarget.checked);
              pages.first();
            }}
          />{' '}
          Live
        </label>
        <button type="button" class="small" onClick={pages.reload}>
          Refresh
        </button>
      </PageHead>
      {live && pages.page === 1 && <FollowFeed onChange={pages.reload} />}
      <FilterBar fields={FIELDS} value={filters} onApply={go} label="Filter tasks" />
      <ErrorBox error={pages.error} />
      {!items && !pages.error && <Loading what="task records" />}
      {items && (
        <>
          <TaskTable items={items} />
          <Pager pages={pages} total={pages.total} />
        </>
      )}
    </div>
  );
}
