// Env variables: typed settings scripts read with fnhub.env(). Everyone reads them (a password
// only ever as `*****`: the API never sends it); admins create, edit and delete them.
import { useState } from 'preact/hooks';
import { del, enc } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { ListControls } from '../../components/Pager.jsx';
import { dateTime } from '../../format.js';
import { useAction, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';
import { EnvForm } from './EnvForm.jsx';

const LONG = 120; // characters of a value shown in the list; the rest in its title

function Value({ env }) {
  if (env.type === 'password') {
    return (
      <span class="muted" title="a password is never shown back">
        ***** <span class="small-print">(hidden)</span>
      </span>
    );
  }
  if (env.value === '') return <span class="muted">(empty)</span>;
  const cut = env.value.length > LONG;
  return (
    <code class="env-value" title={cut ? env.value : undefined}>
      {cut ? `${env.value.slice(0, LONG)}…` : env.value}
    </code>
  );
}

function confirmDelete(env) {
  const again = env.provisioned ? ' fnhub.yaml declares it: the next apply creates it again.' : '';
  return confirmAction(`Delete env variable ${env.name}? Scripts reading it without a default will fail.${again}`);
}

export function Envs({ user }) {
  const list = useNamedPages('/envs');
  const [editing, setEditing] = useState(null);
  const admin = can(user, 'admin');
  const remove = useAction(async (name) => {
    await del(`/envs/${enc(name)}`);
    list.reload();
    return name;
  }, { done: (name) => `Deleted ${name}` });
  return (
    <div class="page">
      <PageHead title="Env variables">
        {admin ? (
          <button type="button" class="primary small" onClick={() => setEditing({})}>
            New variable
          </button>
        ) : (
          <span class="muted">read-only ({user.role}: only an admin changes env variables)</span>
        )}
      </PageHead>
      <p class="muted page-intro">
        Scripts read these with <code>fnhub.env("NAME")</code>; a change reaches running workers within about a second.
      </p>
      <ListControls pages={list} noun="variable" label="variables" />
      <ErrorBox error={list.error} />
      <DataTable
        rows={list.items}
        rowKey={(e) => e.name}
        empty="No env variables yet."
        columns={[
          { label: 'Name', render: (e) => <code>{e.name}</code> },
          { label: 'Type', render: (e) => <span class="badge">{e.type}</span> },
          { label: 'Value', class: 'env-value-cell', render: (e) => <Value env={e} /> },
          { label: 'Description', render: (e) => e.description || <span class="muted">-</span> },
          {
            label: 'Declared in',
            render: (e) =>
              e.provisioned ? (
                <span class="badge badge-queued" title="fnhub apply and server start make it as fnhub.yaml declares it">
                  fnhub.yaml
                </span>
              ) : (
                <span class="muted">API / CLI</span>
              ),
          },
          {
            label: 'Updated',
            class: 'small-print nowrap',
            render: (e) => (
              <>
                <div>{dateTime(e.updated_at)}</div>
                {e.updated_by && <div class="muted">by {e.updated_by}</div>}
              </>
            ),
          },
          {
            label: '',
            class: 'actions',
            render: (e) =>
              admin && (
                <>
                  <button type="button" class="small" aria-label={`Edit ${e.name}`} onClick={() => setEditing({ env: e })}>
                    Edit
                  </button>
                  <button type="button" class="small danger" aria-label={`Delete ${e.name}`} disabled={remove.busy} onClick={() => confirmDelete(e) && remove.run(e.name)}>
                    Delete
                  </button>
                </>
              ),
          },
        ]}
      />
      {editing && <EnvForm env={editing.env} onSaved={list.reload} onClose={() => setEditing(null)} />}
    </div>
  );
}
