// Cron jobs: expression in force, next fire times, pause / resume / run now, recent runs.
import { useState } from 'preact/hooks';
import { del, enc, post, query } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { dateTime } from '../../format.js';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useApi, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';
import { TaskTable } from '../tasks/TaskTable.jsx';
import { CronForm } from './CronForm.jsx';

function RecentRuns({ id }) {
  const runs = useApi(`/tasks${query({ origin: 'cron', origin_id: id, limit: 5 })}`, { every: 3000 });
  if (runs.error) return <ErrorBox error={runs.error} />;
  return runs.data ? <TaskTable items={runs.data.items} /> : null;
}

export function Cron({ user }) {
  const list = useNamedPages('/cron-jobs', { every: 5000 });
  const [editing, setEditing] = useState(null);
  const [open, setOpen] = useState(null);
  const writable = can(user, 'write');
  const act = useAction(async (path, message) => {
    await post(path);
    list.reload();
    return message;
  }, { done: (m) => m });
  const remove = useAction(async (id) => {
    await del(`/cron-jobs/${enc(id)}`);
    list.reload();
  }, { done: 'Deleted' });
  const jobs = list.items;
  return (
    <div class="page">
      <PageHead title="Cron jobs">
        {list.data?.paused_all && <span class="badge badge-skipped">all paused</span>}
        {writable && (
          <button type="button" class="primary small" onClick={() => setEditing({})}>
            New cron job
          </button>
        )}
      </PageHead>
      <ListControls pages={list} noun="job" label="jobs" />
      <ErrorBox error={list.error} />
      {jobs && jobs.length === 0 && <div class="empty">No cron jobs yet.</div>}
      {jobs && jobs.length > 0 && (
        <table class="table">
          <thead>
            <tr>
              <th>Job</th>
              <th>Function</th>
              <th>Schedule</th>
              <th>Next</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => [
              <tr key={j.id}>
                <td>
                  <button type="button" class="link" onClick={() => setOpen(open === j.id ? null : j.id)} aria-expanded={open === j.id}>
                    {j.id}
                  </button>
                  {j.title && <div class="muted">{j.title}</div>}
                </td>
                <td>{j.function}</td>
                <td>
                  <code>{j.status.expr}</code>
                  <div class="muted">{j.status.timezone}</div>
                </td>
                <td class="small-print">
                  {(j.status.next || []).map((t) => (
                    <div key={t}>{dateTime(t)}</div>
                  ))}
                </td>
                <td>
                  {!j.enabled ? <span class="badge badge-skipped">disabled</span> : j.status.paused ? <span class="badge badge-skipped">paused</span> : <span class="badge badge-success">active</span>}
                  {j.status.error && <div class="warn">{j.status.error}</div>}
                  {j.status.last_tick && <div class="muted">last tick {dateTime(j.status.last_tick)}</div>}
                </td>
                <td class="actions">
                  {writable && (
                    <>
                      {j.status.paused ? (
                        <button type="button" class="small" onClick={() => act.run(`/cron-jobs/${enc(j.id)}/resume`, `Resumed ${j.id}`)}>
                          Resume
                        </button>
                      ) : (
                        <button type="button" class="small" onClick={() => act.run(`/cron-jobs/${enc(j.id)}/pause`, `Paused ${j.id}`)}>
                          Pause
                        </button>
                      )}
                      <button type="button" class="small" onClick={() => act.run(`/cron-jobs/${enc(j.id)}/run`, `Queued a run of ${j.id}`)}>
                        Run now
                      </button>
                      {!j.provisioned && (
                        <>
                          <button type="button" class="small" onClick={() => setEditing({ job: j })}>
                            Edit
                          </button>
                          <button type="button" class="small danger" onClick={() => confirmAction(`Delete cron job ${j.id}?`) && remove.run(j.id)}>
                            Delete
                          </button>
                        </>
                      )}
                    </>
                  )}
                </td>
              </tr>,
              open === j.id && (
                <tr key={`${j.id}-runs`} class="expanded">
                  <td colSpan={6}>
                    <strong>Recent runs</strong>
                    <RecentRuns id={j.id} />
                  </td>
                </tr>
              ),
            ])}
          </tbody>
        </table>
      )}
      {editing && <CronForm job={editing.job} onSaved={list.reload} onClose={() => setEditing(null)} />}
    </div>
  );
}
