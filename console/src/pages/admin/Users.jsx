// Users (admin): create with a role, change role, disable, reset password, remove.
import { useState } from 'preact/hooks';
import { del, enc, patch, post } from '../../api.js';
import { ErrorBox, PageHead } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { dateTime } from '../../format.js';
import { ListControls } from '../../components/Pager.jsx';
import { useAction, useNamedPages } from '../../hooks.js';
import { can } from '../../session.js';

const ROLES = ['viewer', 'developer', 'admin'];

export function Users({ user }) {
  const admin = can(user, 'admin');
  const list = useNamedPages(admin ? '/users' : null);
  const [form, setForm] = useState({ username: '', password: '', role: 'developer' });
  const create = useAction(async (e) => {
    e.preventDefault();
    await post('/users', form);
    setForm({ username: '', password: '', role: 'developer' });
    list.reload();
  }, { done: 'User created' });
  const change = useAction(async (name, body) => {
    await patch(`/users/${enc(name)}`, body);
    list.reload();
  }, { done: 'Saved' });
  const remove = useAction(async (name) => {
    await del(`/users/${enc(name)}`);
    list.reload();
  }, { done: 'Removed' });
  if (!admin) {
    return (
      <div class="page">
        <PageHead title="Users" />
        <div class="empty">Only an admin manages users.</div>
      </div>
    );
  }
  const users = list.items;
  return (
    <div class="page">
      <PageHead title="Users" />
      <ErrorBox error={list.error} />
      <form class="inline-form" onSubmit={create.run}>
        <label>
          Username
          <input name="new-username" value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        </label>
        <label>
          Password
          <input name="new-password" type="password" autocomplete="new-password" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        </label>
        <label>
          Role
          <select name="new-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary small" disabled={create.busy}>
          Create user
        </button>
      </form>
      <ListControls pages={list} noun="user" label="users" />
      <DataTable
        rows={users}
        rowKey={(u) => u.username}
        empty="No users."
        columns={[
          { label: 'Username', key: 'username' },
          {
            label: 'Role',
            render: (u) => (
              <select aria-label={`Role of ${u.username}`} value={u.role} disabled={u.username === user.username} onChange={(e) => change.run(u.username, { role: e.currentTarget.value })}>
                {ROLES.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            ),
          },
          { label: 'Created', render: (u) => dateTime(u.created_at) },
          { label: 'State', render: (u) => (u.disabled ? 'disabled' : 'active') },
          {
            label: '',
            class: 'actions',
            render: (u) =>
              u.username !== user.username && (
                <>
                  <button type="button" class="small" onClick={() => change.run(u.username, { disabled: !u.disabled })}>
                    {u.disabled ? 'Enable' : 'Disable'}
                  </button>
                  <button
                    type="button"
                    class="small"
                    onClick={() => {
                      const password = window.prompt(`New password for ${u.username}`);
                      if (password) change.run(u.username, { password });
                    }}
                  >
                    Set password
                  </button>
                  <button type="button" class="small danger" onClick={() => confirmAction(`Remove user ${u.username}?`) && remove.run(u.username)}>
                    Remove
                  </button>
                </>
              ),
          },
        ]}
      />
    </div>
  );
}
