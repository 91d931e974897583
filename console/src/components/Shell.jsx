// The frame around every page once signed in: navigation on the left, the user at the top.
import { useLocation } from 'preact-iso';
import { can, signOut } from '../session.js';

const NAV = [
  { group: '', items: [['/', 'Overview']] },
  {
    group: 'Develop',
    items: [
      ['/scripts', 'Scripts'],
      ['/tasks', 'Tasks'],
      ['/dead-letters', 'Dead letters'],
      ['/envs', 'Env variables'],
    ],
  },
  {
    group: 'Triggers',
    items: [
      ['/connectors', 'Connectors'],
      ['/subscriptions', 'Subscriptions'],
      ['/cron', 'Cron jobs'],
      ['/endpoints', 'Endpoints'],
      ['/hub', 'WebSub hub'],
    ],
  },
  { group: 'Operate', items: [['/cluster', 'Cluster']] },
  {
    group: 'Admin',
    admin: true, // shown to admins only (the pages say so to others)
    items: [
      ['/keys', 'API keys'],
      ['/users', 'Users'],
      ['/audit', 'Audit log'],
    ],
  },
];

function active(path, href) {
  return href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`);
}

export function Shell({ user, children }) {
  const { path } = useLocation();
  return (
    <div class="shell">
      <nav class="nav" aria-label="Main">
        <a class="brand" href="/">
          fnhub
        </a>
        {NAV.filter((g) => !g.admin || can(user, 'admin')).map(({ group, items }) => (
          <div class="nav-group" key={group}>
            {group && <div class="nav-title">{group}</div>}
            {items.map(([href, label]) => (
              <a key={href} href={href} class={active(path, href) ? 'nav-link current' : 'nav-link'}>
                {label}
              </a>
            ))}
          </div>
        ))}
        <div class="nav-user">
          <div class="user-name" title="signed in">
            {user.username}
          </div>
          <div class="muted">{user.role}</div>
          <button type="button" class="small" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </nav>
      <main class="main">{children}</main>
    </div>
  );
}
