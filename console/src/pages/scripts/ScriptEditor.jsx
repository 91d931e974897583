// One script's code: edit, then publish with a diff against the active version. A refused
// publish shows its error at its line and column in the editor.
import { useEffect, useRef, useState } from 'preact/hooks';
import { enc, put } from '../../api.js';
import { ErrorBox, Loading } from '../../components/bits.jsx';
import { toast } from '../../components/Toasts.jsx';
import { useCodeMirror } from '../../editor/useCodeMirror.js';
import { can } from '../../session.js';
import { activeCode } from './activeCode.js';
import { dropBuffer, getBuffer, setBuffer } from './buffers.js';
import { STARTER } from './NewScript.jsx';
import { PublishDialog } from './PublishDialog.jsx';
import { publishError } from './publishError.js';

export function ScriptEditor({ name, user, onPublished }) {
  const [active, setActive] = useState(undefined); // undefined: loading; null: none
  const [loadError, setLoadError] = useState(null);
  const [text, setText] = useState(null);
  const [error, setError] = useState(null);
  const [reviewing, setReviewing] = useState(false);
  const [busy, setBusy] = useState(false);
  const writable = can(user, 'write');

  useEffect(() => {
    activeCode(name).then(
      (a) => {
        setActive(a);
        setText(getBuffer(name) ?? a?.code ?? STARTER);
      },
      setLoadError,
    );
  }, [name]);

  const review = useRef(() => {});
  review.current = () => writable && setReviewing(true);

  const [ref, cm, view] = useCodeMirror(
    (cm, el) =>
      cm.createEditor(el, {
        doc: text,
        readOnly: !writable,
        onChange: (t) => {
          setText(t);
          setBuffer(name, t);
        },
        onSave: () => review.current(),
      }),
    [text === null],
  );

  useEffect(() => {
    if (view && cm) (error?.line ? cm.showError(view, error) : cm.clearErrors(view));
  }, [view, cm, error]);

  const publish = async () => {
    setBusy(true);
    try {
      const out = await put(`/scripts/${enc(name)}`, { code: text });
      setReviewing(false);
      setError(null);
      dropBuffer(name);
      setActive({ version: out.version, code: text });
      toast(`Published ${name} v${out.version}: ${out.functions.join(', ') || 'no functions'}`);
      onPublished();
    } catch (exc) {
      setReviewing(false);
      setError(publishError(exc));
    } finally {
      setBusy(false);
    }
  };

  const revert = () => {
    dropBuffer(name);
    setError(null);
    if (view && cm) cm.setText(view, active?.code ?? STARTER);
  };

  if (loadError) return <ErrorBox error={loadError} />;
  if (active === undefined || text === null) return <Loading what="the script" />;
  const changed = text !== (active?.code ?? '');
  return (
    <div class="editor-pane">
      <div class="toolbar">
        <span class="muted">
          {active ? `active: v${active.version}` : 'not published yet'}
          {changed && active ? ' · edited' : ''}
        </span>
        <span class="spacer" />
        {writable && (
          <>
            <button type="button" onClick={revert} disabled={!changed || !active}>
              Revert
            </button>
            <button type="button" class="primary" onClick={() => setReviewing(true)} disabled={!changed || busy}>
              Publish…
            </button>
          </>
        )}
        {!writable && <span class="muted">read-only ({user.role})</span>}
      </div>
      {error && (
        <div class="error-box publish-error" role="alert">
          <strong>{error.line ? `Line ${error.line}${error.column ? `, column ${error.column}` : ''}: ` : ''}</strong>
          <span class="pre-wrap">{error.message}</span>
        </div>
      )}
      <div class="editor" ref={ref} />
      {reviewing && (
        <PublishDialog name={name} before={active?.code ?? ''} after={text} version={active?.version} busy={busy} onPublish={publish} onClose={() => setReviewing(false)} />
      )}
    </div>
  );
}
