// Dead letters: tasks that failed for good (with `dead_letter=True`) or whose worker died too
// often. Filter, inspect, replay one or all matching (after a fix: a replay runs the active
// version), discard one or all matching.
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { del, enc, post, query } from '../../api.js';
import { ErrorBox, Loading, PageHead } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { FilterBar, filtersFrom } from '../../components/FilterBar.jsx';
import { Pager } from '../../components/Pager.jsx';
import { toast } from '../../components/Toasts.jsx';
import { dateTime } from '../../format.js';
import { useCursorPages } from '../../hooks.js';
import { can } from '../../session.js';
import { BulkDialog } from './BulkDialog.jsx';
import { LetterDialog } from './LetterDialog.jsx';

const FIELDS = [
  { name: 'function', label: 'Function', placeholder: 'script.function' },
  { name: 'q', label: 'Text', placeholder: 'in reason or task id' },
  { name: 'since', label: 'Died from', type: 'time' },
  { name: 'until', label: 'Died until', type: 'time' },
];

function Replayed({ ids }) {
  if (!ids?.length) return null;
  return (
    <div class="notice" role="status">
      Replayed as {ids.length === 1 ? 'task' : 'tasks'}{' '}
      {ids.slice(0, 5).map((id) => (
        <a key={id} class="mono" href={`/tasks/${id}`}>
          {id}{' '}
        </a>
      ))}
    </div>
  );
}

export function DeadLetters({ user }) {
  const { query: q, route, path } = useLocation();
  const filters = filtersFrom(q, FIELDS);
  const given = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== ''));
  const pages = useCursorPages('/dead-letters', filters);
  const [open, setOpen] = useState(null);
  const [bulk, setBulk] = useState(null);
  const [replayed, setReplayed] = useState(null);
  const writable = can(user, 'write');
  const items = pages.data?.items;

  const replay = async (letter) => {
    try {
      const out = await post(`/dead-letters/${enc(letter.id)}/replay`);
      setReplayed(out.task_ids);
      setOpen(null);
      pages.reload();
    } catch (exc) {
      toast(exc.message, 'error');
    }
  };
  const discard = async (letter) => {
    if (!confirmAction(`Discard the dead letter of task ${letter.task_id}? It is deleted for good.`)) return;
    try {
      await del(`/dead-letters/${enc(letter.id)}`);
      toast('Discarded');
      setOpen(null);
      pages.reload();
    } catch (exc) {
      toast(exc.message, 'error');
    }
  };

  return (
    <div class="page">
      <PageHead title="Dead letters">
        {writable && (
          <>
            <button type="button" class="small" disabled={!items?.length} onClick={() => setBulk('replay')}>
              Replay matching…
            </button>
            <button type="button" class="small danger" disabled={!items?.length} onClick={() => setBulk('discard')}>
              Discard matching…
            </button>
          </>
        )}
      </PageHead>
      <FilterBar fields={FIELDS} value={filters} onApply={(f) => route(`${path}${query(f)}`)} label="Filter dead letters" />
      <Replayed ids={replayed} />
      <ErrorBox error={pages.error} />
      {!items && !pages.error && <Loading what="dead letters" />}
      {items && items.length === 0 && <div class="empty">No dead letters{Object.keys(given).length ? ' match' : ''}.</div>}
      {items && items.length > 0 && (
        <>
          <table class="table dead-letters">
            <thead>
              <tr>
                <th>Died</th>
                <th>Function</th>
                <th>Why</th>
                <th>Trigger</th>
                <th class="num">Attempt</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td>
                    <button type="button" class="link" onClick={() => setOpen(d.id)}>
                      {dateTime(d.dead_at)}
                    </button>
                  </td>
                  <td>
                    {d.function}
                    <div>
                      <a class="mono small-print" href={`/tasks/${d.task_id}`}>
                        {d.task_id}
                      </a>
                    </div>
                  </td>
                  <td class="clip warn" title={d.reason}>
                    {d.reason}
                  </td>
                  <td class="muted">
                    {d.origin}
                    {d.origin_id ? ` · ${d.origin_id}` : ''}
                  </td>
                  <td class="num">{d.attempt}</td>
                  <td class="actions">
                    <button type="button" class="small" onClick={() => setOpen(d.id)}>
                      Inspect
                    </button>
                    {writable && (
                      <>
                        <button type="button" class="small" onClick={() => replay(d)}>
                          Replay
                        </button>
                        <button type="button" class="small danger" onClick={() => discard(d)}>
                          Discard
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager pages={pages} shown={items.length} label="on this page" />
        </>
      )}
      {open && <LetterDialog id={open} writable={writable} onReplay={replay} onDiscard={discard} onClose={() => setOpen(null)} />}
      {bulk && (
        <BulkDialog
          action={bulk}
          filter={given}
          onDone={(out) => {
            if (out.task_ids) setReplayed(out.task_ids);
            pages.reload();
          }}
          onClose={() => setBulk(null)}
        />
      )}
    </div>
  );
}
