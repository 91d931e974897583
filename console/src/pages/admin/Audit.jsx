// The audit log (admin): who changed what and when, newest first, a page at a time; each
// entry opens to the fields it changed (secrets masked by the server).
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { query } from '../../api.js';
import { ErrorBox, Loading, PageHead } from '../../components/bits.jsx';
import { FilterBar, filtersFrom } from '../../components/FilterBar.jsx';
import { Pager } from '../../components/Pager.jsx';
import { dateTime } from '../../format.js';
import { useCursorPages } from '../../hooks.js';
import { can } from '../../session.js';
import { changes } from './auditChanges.js';

const KINDS = ['script', 'endpoint', 'connector', 'subscription', 'cron_job', 'cache', 'key', 'user', 'websub_topic'];
const VERBS = ['create', 'update', 'delete', 'publish', 'rollback', 'pause', 'resume', 'run', 'sign_in', 'sign_out', 'remove', 'revoke'];
const ACTIONS = KINDS.flatMap((k) => VERBS.map((v) => `${k}.${v}`));
const FIELDS = [
  { name: 'actor', label: 'Actor', placeholder: 'user:alice, key:…, cli' },
  { name: 'action', label: 'Action', placeholder: 'connector.update', list: ACTIONS },
  { name: 'resource', label: 'Resource', placeholder: 'connector:local' },
  { name: 'since', label: 'From', type: 'time' },
  { name: 'until', label: 'Until', type: 'time' },
];

function Changes({ entry }) {
  const rows = changes(entry.before, entry.after);
  if (rows.length === 0) return <p class="muted">No field changed.</p>;
  return (
    <table class="table changes">
      <thead>
        <tr>
          <th>Field</th>
          <th>Before</th>
          <th>After</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.path}>
            <td class="mono">{r.path}</td>
            <td class="mono removed">{r.before ?? '—'}</td>
            <td class="mono added">{r.after ?? '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Audit({ user }) {
  const { query: q, route, path } = useLocation();
  const admin = can(user, 'admin');
  const filters = filtersFrom(q, FIELDS);
  const pages = useCursorPages(admin ? '/audit' : null, filters);
  const [open, setOpen] = useState(null);
  if (!admin) {
    return (
      <div class="page">
        <PageHead title="Audit log" />
        <div class="empty">Only an admin reads the audit log.</div>
      </div>
    );
  }
  const items = pages.data?.items;
  return (
    <div class="page">
      <PageHead title="Audit log" />
      <FilterBar fields={FIELDS} value={filters} onApply={(f) => route(`${path}${query(f)}`)} label="Filter the audit log" />
      <ErrorBox error={pages.error} />
      {!items && !pages.error && <Loading what="the audit log" />}
      {items && items.length === 0 && <div class="empty">No entry matches.</div>}
      {items && items.length > 0 && (
        <>
          <table class="table audit">
            <thead>
              <tr>
                <th>When</th>
                <th>Actor</th>
                <th>Action</th>
                <th>Resource</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((e) => [
                <tr key={e.id}>
                  <td>{dateTime(e.at)}</td>
                  <td class="mono">{e.actor}</td>
                  <td>
                    <span class="badge">{e.action}</span>
                  </td>
                  <td class="mono clip">{e.resource}</td>
                  <td class="actions">
                    <button type="button" class="small" aria-expanded={open === e.id} onClick={() => setOpen(open === e.id ? null : e.id)}>
                      {open === e.id ? 'Hide' : 'Changes'}
                    </button>
                  </td>
                </tr>,
                open === e.id && (
                  <tr key={`${e.id}-changes`} class="expanded">
                    <td colSpan={5}>
                      <Changes entry={e} />
                    </td>
                  </tr>
                ),
              ])}
            </tbody>
          </table>
          <Pager pages={pages} shown={items.length} label="on this page" />
        </>
      )}
    </div>
  );
}
