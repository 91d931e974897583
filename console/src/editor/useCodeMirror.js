// Loads the editor chunk on first use and keeps one view per mounted element.
import { useEffect, useRef, useState } from 'preact/hooks';

let loading = null;
export function loadEditor() {
  loading ??= import('./codemirror.js');
  return loading;
}

/** Mount a view built by `make(cm, element)`; returns [ref for the element, cm module, view]. */
export function useCodeMirror(make, deps) {
  const ref = useRef(null);
  const [state, setState] = useState({ cm: null, view: null });
  useEffect(() => {
    let view = null;
    let gone = false;
    loadEditor().then((cm) => {
      if (gone || !ref.current) return;
      view = make(cm, ref.current);
      setState({ cm, view });
    });
    return () => {
      gone = true;
      view?.destroy();
    };
  }, deps);
  return [ref, state.cm, state.view];
}
