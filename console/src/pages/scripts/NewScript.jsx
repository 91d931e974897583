// Ask for a new script's name and save a starter text as its draft on the server: the script
// shows in the tree at once, and exists as a version only once it is published.
import { useState } from 'preact/hooks';
import { Dialog } from '../../components/Dialog.jsx';
import { ErrorBox } from '../../components/bits.jsx';
import { saveDraft } from './drafts.js';

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;

export const STARTER = `import fnhub


@fnhub.api("Say hello")
def hello(name: str = "world") -> str:
    print("greeting", name)
    return f"hello, {name}!"
`;

export function NewScript({ existing, onClose, onCreate }) {
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (!NAME.test(name)) {
      setError({ message: 'A script name is a Python identifier: a letter, then letters, digits or _.' });
      return;
    }
    if (existing.some((s) => s.name === name)) {
      setError({ message: `There is a script '${name}' already.` });
      return;
    }
    setBusy(true);
    try {
      await saveDraft(name, STARTER);
      onCreate(name);
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="New script" onClose={onClose}>
      <form onSubmit={submit} class="form">
        <label>
          Name (the module name other scripts import)
          <input name="script-name" value={name} onInput={(e) => setName(e.currentTarget.value)} autofocus />
        </label>
        <p class="muted">It is saved as a draft; publish it to make its functions callable.</p>
        <ErrorBox error={error} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
