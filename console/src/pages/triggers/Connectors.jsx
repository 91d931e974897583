// Connectors: broker connections with their settings (secrets come back masked and stay
// masked: sending the mask back keeps the stored value), tested on demand.
import { useState } from 'preact/hooks';
import { del, enc, post, put } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { JsonDialog } from '../../components/JsonDialog.jsx';
import { dateTime } from '../../format.js';
import { useAction, useApi } from '../../hooks.js';
import { can } from '../../session.js';

const TEMPLATE = { type: 'mqtt', description: '', settings: { host: '127.0.0.1', port: 1883 } };
const HELP =
  'type: redis, mqtt, kafka, ... settings: host, port, username, password, ... ' +
  'Secrets show as ******** and keep their stored value when sent back unchanged.';

export function Connectors({ user }) {
  const list = useApi('/connectors');
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
  const save = async (body, name) => {
    await put(`/connectors/${enc(editing.name || name)}`, body);
    list.reload();
  };
  return (
    <div class="page">
      <PageHead title="Connectors">
        {writable && (
          <button type="button" class="primary small" onClick={() => setEditing({ value: TEMPLATE })}>
            New connector
          </button>
        )}
      </PageHead>
      <ErrorBox error={list.error} />
      <DataTable
        rows={list.data}
        empty="No connectors yet."
        columns={[
          { label: 'Name', key: 'name' },
          { label: 'Type', key: 'type' },
          { label: 'Description', key: 'description', class: 'muted' },
          { label: 'Settings', render: (c) => <code class="clip">{JSON.stringify(c.settings)}</code> },
          { label: 'Updated', render: (c) => dateTime(c.updated_at) },
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
                    <button type="button" class="small" onClick={() => setEditing({ name: c.name, value: { type: c.type, description: c.description, settings: c.settings } })}>
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
      {editing && (
        <JsonDialog
          title={editing.name ? `Connector ${editing.name}` : 'New connector'}
          value={editing.value}
          help={HELP}
          withName={!editing.name}
          namePattern={/^[A-Za-z0-9_.-]{1,128}$/}
          onSave={save}
          onClose={() => setEditing(null)}
        />
      )}
    </div>
  );
}
