// Edit an object as JSON text; the server's refusal (validation, cycle check, ...) shows here.
import { useState } from 'preact/hooks';
import { json } from '../format.js';
import { ErrorBox } from './bits.jsx';
import { Dialog } from './Dialog.jsx';

export function JsonDialog({ title, value, help, withName = false, namePattern, onSave, onClose }) {
  const [name, setName] = useState('');
  const [text, setText] = useState(json(value));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let body;
    try {
      body = JSON.parse(text);
    } catch (exc) {
      setError({ message: `Not valid JSON: ${exc.message}` });
      return;
    }
    if (withName && !(namePattern || /./).test(name)) {
      setError({ message: 'Give it a name (letters, digits, - _ .).' });
      return;
    }
    setBusy(true);
    try {
      await onSave(body, name);
      onClose();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} wide>
      <form class="form" onSubmit={submit}>
        {withName && (
          <label>
            Name
            <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} autofocus />
          </label>
        )}
        {help && <p class="muted pre-wrap">{help}</p>}
        <label>
          Definition (JSON)
          <textarea name="definition" class="mono" rows={16} value={text} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} />
        </label>
        <ErrorBox error={error} />
        <div class="form-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
