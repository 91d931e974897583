// A dialog around a form: Save runs `onSave()` (which throws the server's refusal, shown here
// as it came, e.g. a subscription's cycle check) and closes on success. `errorId` names that
// message, so a field the refusal is about can point at it (aria-describedby).
import { useState } from 'preact/hooks';
import { ErrorBox } from '../bits.jsx';
import { Dialog } from '../Dialog.jsx';

export function FormDialog({ title, onSave, onClose, children, wide = true, errorId }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await onSave();
      onClose();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} wide={wide}>
      <form class="form" onSubmit={submit}>
        {children}
        <ErrorBox error={error} title="Not saved" id={errorId} />
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
