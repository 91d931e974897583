// Every exported function as "script.function", for pickers (from GET /scripts: names only,
// cheap even with a thousand functions).
import { useMemo } from 'preact/hooks';
import { useApi } from '../../hooks.js';

export function useFunctionRefs() {
  const scripts = useApi('/scripts');
  return useMemo(() => (scripts.data || []).flatMap((s) => s.functions.map((f) => `${s.name}.${f}`)), [scripts.data]);
}

/** A <datalist> of function refs, for inputs with list={id}. */
export function FunctionList({ id, refs }) {
  return (
    <datalist id={id}>
      {refs.map((r) => (
        <option key={r} value={r} />
      ))}
    </datalist>
  );
}
