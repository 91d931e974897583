// One script's code. Edits are kept as the script's draft on the server (saved a moment after
// each change, or at once with Save draft / Ctrl-S); the active version changes only when the
// draft is published, after a side-by-side review. A refused publish shows its error at its
// line and column in the editor, and the draft stays.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorBox, Loading } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { toast } from '../../components/Toasts.jsx';
import { useCodeMirror } from '../../editor/useCodeMirror.js';
import { dateTime } from '../../format.js';
import { can } from '../../session.js';
import { discardDraft, openScript, publishDraft, useDraft } from './drafts.js';
import { STARTER } from './NewScript.jsx';
import { PublishDialog } from './PublishDialog.jsx';
import { publishError } from './publishError.js';

const SAVE_STATES = { saved: 'draft saved', unsaved: 'unsaved changes', saving: 'saving…', failed: 'draft not saved' };

function DraftStatus({ draft, state, active }) {
  if (!draft && state === 'saved') return null;
  const stale = draft && active && draft.base_version && draft.base_version !== active.version;
  return (
    <>
      <span class={state === 'failed' ? 'badge badge-failure' : 'badge badge-draft'} title={draft ? `saved ${dateTime(draft.updated_at)} by ${draft.author}` : ''}>
        {SAVE_STATES[state]}
      </span>
      {stale && <span class="warn small-print">started from v{draft.base_version}; v{active.version} is active now</span>}
    </>
  );
}

function Editor({ name, opened, user, onPublished, onDraftSaved }) {
  const writable = can(user, 'write');
  const [active, setActive] = useState(opened.active);
  // a new script is Python; a published one keeps its language when edited here
  const language = opened.active?.language ?? 'python';
  const initial = opened.draft?.code ?? opened.active?.code ?? STARTER;
  const [text, setText] = useState(initial);
  const [baseline, setBaseline] = useState(opened.active?.code ?? STARTER);
  const [error, setError] = useState(null);
  const [reviewing, setReviewing] = useState(false);
  const [busy, setBusy] = useState(false);
  const draft = useDraft(name, {
    text,
    baseline,
    initialDraft: opened.draft,
    baseVersion: opened.active?.version,
    enabled: writable,
    onSaved: onDraftSaved,
  });
  const save = useRef(() => {});
  save.current = () => writable && draft.saveNow().catch(() => {});

  const [ref, cm, view] = useCodeMirror(
    (cm, el) =>
      cm.createEditor(el, {
        doc: initial,
        language,
        readOnly: !writable,
        onChange: setText,
        onSave: () => save.current(),
      }),
    [],
  );

  useEffect(() => {
    if (view && cm) (error?.line ? cm.showError(view, error) : cm.clearErrors(view));
  }, [view, cm, error]);

  const publish = async () => {
    setBusy(true);
    try {
      const out = await publishDraft(name, text);
      setReviewing(false);
      setError(null);
      setActive({ version: out.version, code: text });
      setBaseline(text);
      draft.setDraft(null);
      toast(`Published ${name} v${out.version}: ${out.functions.join(', ') || 'no functions'}`);
      onPublished();
    } catch (exc) {
      setReviewing(false);
      setError(publishError(exc));
    } finally {
      setBusy(false);
    }
  };

  const discard = async () => {
    if (draft.draft && !confirmAction(`Discard the draft of ${name}? ${active ? `The editor goes back to v${active.version}.` : 'The script has no published version.'}`)) return;
    try {
      if (draft.draft) await discardDraft(name);
    } catch (exc) {
      if (exc.status !== 404) {
        toast(exc.message, 'error');
        return;
      }
    }
    draft.setDraft(null);
    setError(null);
    const back = active?.code ?? STARTER;
    setBaseline(back);
    if (view && cm) cm.setText(view, back);
    setText(back);
    onDraftSaved?.();
  };

  const changed = text !== (active?.code ?? '');
  return (
    <div class="editor-pane">
      <div class="toolbar">
        <span class="muted">{active ? `active: v${active.version}` : 'not published yet'}</span>
        <span class="badge" title="the script's language">{language === 'javascript' ? 'JavaScript' : 'Python'}</span>
        {writable && <DraftStatus draft={draft.draft} state={draft.state} active={active} />}
        <span class="spacer" />
        {writable && (
          <>
            <button type="button" onClick={discard} disabled={!draft.draft && !draft.dirty}>
              Discard draft
            </button>
            <button type="button" onClick={() => save.current()} disabled={!draft.dirty || draft.state === 'saving'} title="Ctrl-S">
              Save draft
            </button>
            <button type="button" class="primary" onClick={() => setReviewing(true)} disabled={!changed || busy}>
              Publish…
            </button>
          </>
        )}
        {!writable && <span class="muted">read-only ({user.role})</span>}
      </div>
      <ErrorBox error={draft.error} title="Saving the draft failed" />
      {error && (
        <div class="error-box publish-error" role="alert">
          <strong>{error.line ? `Line ${error.line}${error.column ? `, column ${error.column}` : ''}: ` : ''}</strong>
          <span class="pre-wrap">{error.message}</span>
        </div>
      )}
      <div class="editor" ref={ref} />
      {reviewing && (
        <PublishDialog name={name} before={active?.code ?? ''} after={text} version={active?.version} language={language} busy={busy} onPublish={publish} onClose={() => setReviewing(false)} />
      )}
    </div>
  );
}

export function ScriptEditor({ name, user, onPublished, onDraftSaved }) {
  const [opened, setOpened] = useState(null);
  const [loadError, setLoadError] = useState(null);
  useEffect(() => {
    openScript(name).then(setOpened, setLoadError);
  }, [name]);
  if (loadError) return <ErrorBox error={loadError} />;
  if (!opened) return <Loading what="the script" />;
  return <Editor name={name} opened={opened} user={user} onPublished={onPublished} onDraftSaved={onDraftSaved} />;
}
