// Ask for a new script's name; the editor then opens on a starter text (nothing is stored
// until it is published).
import { useState } from 'preact/hooks';
import { Dialog } from '../../components/Dialog.jsx';
import { ErrorBox } from '../../components/bits.jsx';
import { setBuffer } from './buffers.js';

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
  const submit = (e) => {
    e.preventDefault();
    if (!NAME.test(name)) {
      setError({ message: 'A script name is a Python identifier: a letter, then letters, digits or _.' });
    } else if (existing.some((s) => s.name === name)) {
      setError({ message: `There is a script '${name}' already.` });
    } else {
      setBuffer(name, STARTER);
      onCreate(name);
    }
  };
  return (
    <Dialog title="New script" onClose={onClose}>
      <form onSubmit={submit} class="form">
        <label>
          Name (the module name other scripts import)
          <input name="script-name" value={name} onInput={(e) => setName(e.currentTarget.value)} autofocus />
        </label>
        <ErrorBox error={error} />
        <div class="form-actions">
          <button type="submit" class="primary">
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}
