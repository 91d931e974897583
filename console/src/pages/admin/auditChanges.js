// What an audit entry changed: the fields whose value differs between `before` and `after`,
// nested objects flattened to dotted paths ("settings.password"), values as JSON text.

function flatten(value, prefix, out) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0 && prefix) out.set(prefix, '{}');
    for (const k of keys) flatten(value[k], prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, JSON.stringify(value));
  } else if (value !== null && value !== undefined) {
    out.set('(value)', JSON.stringify(value));
  }
  return out;
}

/** [{path, before, after}] of the changed fields; before/after undefined when absent. */
export function changes(before, after) {
  const a = flatten(before, '', new Map());
  const b = flatten(after, '', new Map());
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths.filter((p) => a.get(p) !== b.get(p)).map((p) => ({ path: p, before: a.get(p), after: b.get(p) }));
}
