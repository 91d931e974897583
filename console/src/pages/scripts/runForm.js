// A function's signature as form fields, and the fields' text back as kwargs.

/** "int", "<class 'int'>", "typing.Optional[int]", "int | None" → {type: "int", optional}. */
export function annotationType(annotation) {
  if (!annotation) return { type: 'json', optional: false };
  let a = annotation.replace(/^<class '(.*)'>$/, '$1').replace(/typing\./g, '').trim();
  let optional = false;
  const opt = /^Optional\[(.*)\]$/.exec(a);
  if (opt) {
    a = opt[1];
    optional = true;
  }
  const parts = a.split('|').map((p) => p.trim());
  if (parts.includes('None')) {
    optional = true;
    a = parts.filter((p) => p !== 'None').join(' | ');
  }
  const type = { int: 'int', float: 'float', bool: 'bool', str: 'str' }[a] || 'json';
  return { type, optional };
}

/** One field per parameter that a keyword can fill. */
export function fieldsOf(params) {
  return params
    .filter((p) => p.kind !== 'var_positional')
    .map((p) => {
      const { type, optional } = p.kind === 'var_keyword' ? { type: 'kwargs', optional: true } : annotationType(p.annotation);
      let initial = '';
      if (!p.required && p.kind !== 'var_keyword') {
        if (type === 'bool') initial = Boolean(p.default);
        else if (type === 'json') initial = p.default === null || p.default === undefined ? '' : JSON.stringify(p.default);
        else initial = p.default === null || p.default === undefined ? '' : String(p.default);
      } else if (type === 'bool') initial = false;
      return { name: p.name, type, optional: optional || !p.required, required: p.required, annotation: p.annotation, initial };
    });
}

/** kwargs from the fields' values; throws Error naming the field that does not parse. */
export function kwargsOf(fields, values) {
  const kwargs = {};
  for (const f of fields) {
    const raw = values[f.name];
    if (f.type === 'bool') {
      kwargs[f.name] = Boolean(raw);
      continue;
    }
    const text = raw === undefined || raw === null ? '' : String(raw);
    if (text.trim() === '') {
      if (f.required) throw new Error(`${f.name}: a value is required`);
      continue; // the function's default applies
    }
    if (f.type === 'str') kwargs[f.name] = text;
    else if (f.type === 'int') {
      if (!/^[-+]?\d+$/.test(text.trim())) throw new Error(`${f.name}: not a whole number`);
      kwargs[f.name] = Number.parseInt(text, 10);
    } else if (f.type === 'float') {
      const n = Number(text);
      if (Number.isNaN(n)) throw new Error(`${f.name}: not a number`);
      kwargs[f.name] = n;
    } else {
      let value;
      try {
        value = JSON.parse(text);
      } catch (exc) {
        throw new Error(`${f.name}: not valid JSON (${exc.message})`);
      }
      if (f.type === 'kwargs') {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${f.name}: a JSON object of extra keyword arguments`);
        Object.assign(kwargs, value);
      } else kwargs[f.name] = value;
    }
  }
  return kwargs;
}
