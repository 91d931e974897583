// Who is signed in (from GET /session), signing in and out, and what their role may do.
import { del, get, post, setCsrfToken, whenUnauthorized } from './api.js';
import { store } from './store.js';

/** undefined: not known yet; null: signed out; else {username, role}. */
export const session = store(undefined);

function accept(body) {
  setCsrfToken(body.csrf_token || null);
  session.set(body.user || { username: body.key || 'api key', role: body.role });
  return body;
}

export async function loadSession() {
  try {
    accept(await get('/session', { quiet401: true }));
  } catch (exc) {
    session.set(null);
    if (exc.status !== 401) throw exc;
  }
}

export async function signIn(username, password) {
  return accept(await post('/session', { username, password }, { quiet401: true }));
}

export async function signOut() {
  try {
    await del('/session');
  } finally {
    setCsrfToken(null);
    session.set(null);
  }
}

whenUnauthorized(() => {
  setCsrfToken(null);
  session.set(null);
});

const RANK = { viewer: 0, developer: 1, admin: 2 };

/** May the signed-in user change things of this kind? ('write': developer; 'admin': admin) */
export function can(user, what) {
  const rank = RANK[user?.role] ?? -1;
  return what === 'admin' ? rank >= 2 : rank >= 1;
}
