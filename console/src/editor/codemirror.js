// CodeMirror 6, loaded only on the pages that edit or compare code (its own chunk).
import { indentWithTab } from '@codemirror/commands';
import { javascript } from '@codemirror/lang-javascript';
import { python } from '@codemirror/lang-python';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { MergeView } from '@codemirror/merge';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { cspNonce } from './nonce.js';

const nonce = EditorView.cspNonce.of(cspNonce);

const theme = EditorView.theme({
  '&': { height: '100%', fontSize: '13px' },
  '.cm-scroller': { fontFamily: 'var(--mono)' },
});

/** Highlighting for a script's language ("python" or "javascript", as the API names it). */
function syntax(language) {
  return language === 'javascript' ? javascript() : python();
}

/** An editable code editor: line numbers, highlighting, search (Ctrl-F), error gutter. */
export function createEditor(parent, { doc, onChange, onSave, readOnly = false, language = 'python' }) {
  const extensions = [
    nonce,
    basicSetup,
    syntax(language),
    lintGutter(),
    theme,
    keymap.of([
      indentWithTab,
      { key: 'Mod-s', preventDefault: true, run: () => (onSave ? (onSave(), true) : false) },
    ]),
    EditorView.updateListener.of((u) => {
      if (u.docChanged && onChange) onChange(u.state.doc.toString());
    }),
    EditorState.readOnly.of(readOnly),
  ];
  return new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
}

export function setText(view, text) {
  if (view.state.doc.toString() === text) return;
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}

/**
 * Show a publish error at its place (1-based line and column as Python reports them, and its
 * end when known): a red mark in the gutter and under the span, the cursor moved there.
 */
export function showError(view, { line, column, endLine, endColumn, message }) {
  const doc = view.state.doc;
  const at = (l, c) => {
    const ln = doc.line(Math.min(Math.max(1, l || 1), doc.lines));
    return Math.min(ln.from + Math.max(0, (c || 1) - 1), ln.to);
  };
  const from = at(line, column);
  let to = endLine ? at(endLine, endColumn) : doc.lineAt(from).to; // no end: to the line's end
  if (to <= from) to = Math.min(from + 1, doc.length);
  view.dispatch(setDiagnostics(view.state, [{ from, to, severity: 'error', message, source: 'publish' }]));
  view.dispatch({ selection: { anchor: from }, scrollIntoView: true });
}

export function clearErrors(view) {
  view.dispatch(setDiagnostics(view.state, []));
}

/** Two versions side by side, read-only, changes marked (older left). */
export function createDiff(parent, { before, after, language = 'python' }) {
  const side = (doc) => ({
    doc,
    extensions: [nonce, basicSetup, syntax(language), theme, EditorState.readOnly.of(true), EditorView.editable.of(false)],
  });
  return new MergeView({ parent, a: side(before), b: side(after), collapseUnchanged: { margin: 3, minSize: 6 } });
}
