// Sign in with a username and password (POST /session sets the session cookie).
import { useState } from 'preact/hooks';
import { ErrorBox } from '../components/bits.jsx';
import { signIn } from '../session.js';

export function SignIn({ problem }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
    } catch (exc) {
      setError(exc);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="sign-in">
      <form class="card sign-in-card" onSubmit={submit}>
        <h1>fnhub</h1>
        <p class="muted">Sign in to the console.</p>
        <ErrorBox error={problem} />
        <label>
          Username
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small-print">
          The first account is <code>admin</code>; its password is in <code>.fnhub/admin_password</code> of the project.
        </p>
      </form>
    </div>
  );
}
