// Two texts side by side with their differences marked (CodeMirror's merge view).
import { useCodeMirror } from '../../editor/useCodeMirror.js';

export function DiffView({ before, after, language }) {
  const [ref] = useCodeMirror((cm, el) => cm.createDiff(el, { before, after, language }), [before, after, language]);
  return <div class="diff" ref={ref} />;
}
