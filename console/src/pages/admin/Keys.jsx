// API keys: list, create (the token is shown once), revoke.
import { useState } from 'preact/hooks';
import { del, enc, post } from '../../api.js';
import { CopyButton, ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { dateTime } from '../../format.js';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';

export function Keys({ user }) {
  const list = useNamedPages('/keys');
  const [name, setName] = useState('');
  const [role, setRole] = useState('developer');
  const [created, setCreated] = useState(null);
  const admin = can(user, 'admin');
  const create = useAction(async (e) => {
    e.preventDefault();
    const out = await post('/keys', { name, role });
    setCreated(out);
    setName('');
    list.reload();
  });
  const revoke = useAction(async (id) => {
    await del(`/keys/${enc(id)}`);
    list.reload();
  }, { done: 'Revoked' });
  return (
    <div class="page">
      <PageHead title="API keys" />
      <ErrorBox error={list.error} />
      {admin && (
        <form class="inline-form" onSubmit={create.run}>
          <label>
            Name
            <input name="key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="what it is for" />
          </label>
          <label>
            Role
            <select name="key-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              <option>viewer</option>
              <option>developer</option>
              <option>admin</option>
            </select>
          </label>
          <button type="submit" class="primary small" disabled={create.busy}>
            Create key
          </button>
        </form>
      )}
      {created && (
        <div class="notice">
          New key <strong>{created.name || created.id}</strong>, shown only now: <code class="token">{created.token}</code> <CopyButton text={created.token} />
        </div>
      )}
      <ListControls pages={list} noun="key" label="keys" />
      <DataTable
        rows={list.items}
        empty="No API keys."
        columns={[
          { label: 'Id', key: 'id' },
          { label: 'Name', key: 'name' },
          { label: 'Role', render: (k) => k.role || 'admin' },
          { label: 'Created', render: (k) => dateTime(k.created_at) },
          { label: 'Expires', render: (k) => dateTime(k.expires_at) || 'never' },
          { label: '', class: 'actions', render: (k) => admin && <button type="button" class="small danger" onClick={() => confirmAction(`Revoke key ${k.id}?`) && revoke.run(k.id)}>Revoke</button> },
        ]}
      />
    </div>
  );
}
