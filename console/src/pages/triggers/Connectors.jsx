// Connectors: broker connections with their settings (secrets come back masked and stay
// masked: sending the mask back keeps the stored value), edited in a form, tested on demand.
import { useState } from 'preact/hooks';
import { del, enc, post } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { ago, dateTime } from '../../format.js';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';
import { ConnectorForm } from './ConnectorForm.jsx';

/** "host 127.0.0.1 · port 1883 · password ********" */
function settingsText(settings) {
  return Object.entries(settings || {})
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' · ');
}

export function Connectors({ user }) {
  const list = useNamedPages('/connectors');
  const [editing, setEditing] = useState(null);
  const [tests, setTests] = useState({});
  const test = useAction(async (name) => {
    setTests((t) => ({ ...t, [name]: { message: 'testing…' } }));
    const out = await post(`/connectors/${enc(name)}/test`);
    setTests((t) => ({ ...t, [name]: out }));
  });
  const remove = useAction(
    async (name) => {
      await del(`/connectors/${enc(name)}`);
      list.reload();
    },
    { done: 'Deleted' },
  );
  const writable = can(user, 'write');
  return (
    <div class="page">
      <PageHead title="Connectors">
        {writable && (
          <button type="button" class="primary small" onClick={() => setEditing({})}>
            New connector
          </button>
        )}
      </PageHead>
      <ListControls pages={list} noun="connector" label="connectors" />
      <ErrorBox error={list.error} />
      <DataTable
        rows={list.items}
        empty="No connectors yet."
        columns={[
          { label: 'Name', key: 'name', class: 'nowrap' },
          { label: 'Type', key: 'type' },
          { label: 'Description', key: 'description', class: 'muted' },
          { label: 'Settings', render: (c) => <div class="clip settings mono small-print" title={settingsText(c.settings)}>{settingsText(c.settings)}</div> },
          { label: 'Updated', class: 'nowrap', render: (c) => <span title={dateTime(c.updated_at)}>{ago(c.updated_at)}</span> },
          {
            label: 'Test',
            render: (c) => {
              const t = tests[c.name];
              return t ? <span class={t.ok ? 'ok' : t.ok === false ? 'warn' : 'muted'}>{t.ok ? `ok ${t.message}` : t.message}</span> : null;
            },
          },
          {
            label: '',
            class: 'actions',
            render: (c) => (
              <>
                <button type="button" class="small" onClick={() => test.run(c.name)}>
                  Test
                </button>
                {writable && (
                  <>
                    <button type="button" class="small" onClick={() => setEditing({ connector: c })}>
                      Edit
                    </button>
                    <button type="button" class="small danger" onClick={() => confirmAction(`Delete connector ${c.name}?`) && remove.run(c.name)}>
                      Delete
                    </button>
                  </>
                )}
              </>
            ),
          },
        ]}
      />
      {editing && <ConnectorForm connector={editing.connector} onSaved={list.reload} onClose={() => setEditing(null)} />}
    </div>
  );
}
