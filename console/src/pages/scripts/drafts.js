// A script's draft on the server: unpublished code, saved on demand and a moment after each
// edit (so a reload, another tab or another browser finds it), published from there.
import { useEffect, useRef, useState } from 'preact/hooks';
import { del, enc, get, post, put } from '../../api.js';

const AUTOSAVE_MS = 1500;

/** {name, active: {version, code, ...} | null, draft: {code, base_version, ...} | null} */
export async function openScript(name) {
  try {
    return await get(`/scripts/${enc(name)}`);
  } catch (exc) {
    if (exc.status === 404) return { name, active: null, draft: null };
    throw exc;
  }
}

export const saveDraft = (name, code, baseVersion, opts) =>
  put(`/scripts/${enc(name)}/draft`, baseVersion ? { code, base_version: baseVersion } : { code }, opts);

export const discardDraft = (name) => del(`/scripts/${enc(name)}/draft`);

/** Publish `code` (saved as the draft first: a refused publish keeps it). */
export const publishDraft = (name, code) => post(`/scripts/${enc(name)}/draft/publish`, { code });

/**
 * Keep the server's draft of `name` in step with `text`: saved AUTOSAVE_MS after the last
 * edit, at once by `saveNow()`, and on the way out (leaving the script or the page).
 * `baseline`: the text that needs no draft (the active code, or a new script's starter).
 * `state`: 'saved' | 'unsaved' | 'saving' | 'failed'; `draft`: the server's draft.
 */
export function useDraft(name, { text, baseline, initialDraft, baseVersion, enabled, onSaved }) {
  const [draft, setDraft] = useState(initialDraft);
  const [state, setState] = useState('saved');
  const [error, setError] = useState(null);
  const latest = useRef({});
  latest.current = { text, draft, enabled, baseline };
  // with a draft, the text differs from it; without one, from what the editor opened with
  const dirty = (t, d) => t !== null && t !== (d ? d.code : latest.current.baseline);

  const save = async (opts) => {
    const { text: t, draft: d } = latest.current;
    if (!dirty(t, d)) return d;
    setState('saving');
    try {
      const saved = await saveDraft(name, t, d ? d.base_version : baseVersion, opts);
      setDraft(saved);
      setError(null);
      setState(latest.current.text === saved.code ? 'saved' : 'unsaved');
      if (!d) onSaved?.(saved);
      return saved;
    } catch (exc) {
      setError(exc);
      setState('failed');
      throw exc;
    }
  };

  useEffect(() => {
    if (!enabled || !dirty(text, draft)) return undefined;
    setState((s) => (s === 'saving' ? s : 'unsaved'));
    const timer = setTimeout(() => save().catch(() => {}), AUTOSAVE_MS);
    return () => clearTimeout(timer);
  }, [text, enabled]);

  useEffect(() => {
    const flush = () => {
      const { text: t, draft: d, enabled: on } = latest.current;
      if (on && dirty(t, d)) saveDraft(name, t, d ? d.base_version : baseVersion, { keepalive: true }).catch(() => {});
    };
    window.addEventListener('pagehide', flush);
    return () => {
      window.removeEventListener('pagehide', flush);
      flush(); // leaving this script: what was typed since the last save goes too
    };
  }, [name]);

  return { draft, setDraft, state, error, saveNow: () => save(), dirty: enabled && dirty(text, draft) };
}
