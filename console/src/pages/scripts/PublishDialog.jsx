// Review before publishing: the active version and the edited text side by side.
import { Dialog } from '../../components/Dialog.jsx';
import { DiffView } from './DiffView.jsx';

export function PublishDialog({ name, before, after, version, language, busy, onPublish, onClose }) {
  return (
    <Dialog title={`Publish ${name}`} onClose={onClose} wide>
      <p class="muted">
        {version ? `Changes against the active version v${version} (left):` : 'A new script.'}
      </p>
      <DiffView before={before} after={after} language={language} />
      <div class="form-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="primary" onClick={onPublish} disabled={busy}>
          {busy ? 'Publishing…' : 'Publish'}
        </button>
      </div>
    </Dialog>
  );
}
