// Fields built from a JSON Schema (the server's own models, via GET /connector-types): text,
// numbers, booleans, choices, secrets (writeOnly), optional nested objects (TLS options), and
// "text or list" values. Only what the user set is sent: an empty field means the default.
import { CheckField, NumberField, SecretField, SelectField, TextField } from './fields.jsx';

const WORDS = { url: 'URL', tls: 'TLS', db: 'DB', id: 'ID', ca: 'CA', sasl: 'SASL', ssl: 'SSL', ms: '(ms)', qos: 'QoS' };

/** "sasl_password" → "SASL password" */
export function humanize(key) {
  const words = key.split('_').map((w) => WORDS[w] ?? w);
  const first = words[0];
  return [first.charAt(0).toUpperCase() + first.slice(1), ...words.slice(1)].join(' ');
}

function resolve(schema, root) {
  if (schema && schema.$ref) return root.$defs?.[schema.$ref.split('/').pop()] ?? {};
  return schema || {};
}

/** The field kind of a property: {kind, nested?, enum?}. */
function kindOf(prop, root) {
  const variants = (prop.anyOf || [prop]).map((v) => resolve(v, root)).filter((v) => v.type !== 'null');
  const types = variants.map((v) => v.type);
  if (prop.writeOnly) return { kind: 'secret' };
  const object = variants.find((v) => v.type === 'object' && v.properties);
  if (types.includes('boolean') && object) return { kind: 'bool-or-object', nested: object };
  if (object && variants.length === 1) return { kind: 'object', nested: object };
  const enumerated = variants.find((v) => v.enum);
  if (enumerated) return { kind: 'enum', enum: enumerated.enum };
  if (types.includes('string') && types.includes('array')) return { kind: 'list-text' };
  if (types.length === 1 && types[0] === 'boolean') return { kind: 'bool' };
  if (types.length === 1 && (types[0] === 'integer' || types[0] === 'number')) return { kind: types[0] };
  if (types.length === 1 && types[0] === 'string') return { kind: 'string' };
  return { kind: 'json' };
}

const shown = (v) => (v === null || v === undefined ? '' : String(v));

function PropField({ name, prop, root, value, onValue, required, path }) {
  const label = humanize(name);
  const { kind, nested, enum: options } = kindOf(prop, root);
  const def = prop.default;
  const placeholder = def === undefined || def === null ? '' : `default ${def}`;
  const hint = prop.description;
  const field = `${path}${name}`;
  if (kind === 'secret') return <SecretField label={label} name={field} value={value} onValue={onValue} required={required} hint={hint} />;
  if (kind === 'bool') return <CheckField label={label} name={field} value={value ?? def} onValue={onValue} hint={hint} />;
  if (kind === 'enum') return <SelectField label={label} name={field} value={value ?? def ?? null} onValue={onValue} options={options} empty={def === undefined ? '—' : undefined} hint={hint} />;
  if (kind === 'integer' || kind === 'number') {
    return <NumberField label={label} name={field} value={value} onValue={onValue} required={required} placeholder={placeholder} step={kind === 'integer' ? '1' : 'any'} min={prop.minimum} max={prop.maximum} hint={hint} />;
  }
  if (kind === 'list-text') {
    return <TextField label={label} name={field} value={Array.isArray(value) ? value.join(', ') : shown(value)} onValue={(v) => onValue(v === '' ? null : v)} required={required} placeholder="host:port, host:port" hint={hint} />;
  }
  if (kind === 'bool-or-object' && (value === undefined || value === null || value === false)) {
    return <CheckField label={label} name={field} value={false} onValue={(v) => onValue(v ? true : null)} hint={hint} />;
  }
  if (kind === 'bool-or-object' || kind === 'object') {
    const on = true;
    const inner = value && typeof value === 'object' ? value : {};
    return (
      <fieldset class="nested">
        <legend>
          {kind === 'bool-or-object' ? <CheckField label={label} name={field} value={on} onValue={(v) => onValue(v ? true : null)} /> : label}
        </legend>
        {on && (
          <SchemaFields
            schema={nested}
            root={root}
            value={inner}
            path={`${field}.`}
            onChange={(next) => onValue(Object.keys(next).length ? next : kind === 'bool-or-object' ? true : null)}
          />
        )}
      </fieldset>
    );
  }
  if (kind === 'json') {
    return <TextField label={label} name={field} value={value === undefined ? '' : JSON.stringify(value)} onValue={(v) => {
      try {
        onValue(v === '' ? null : JSON.parse(v));
      } catch {
        onValue(v);
      }
    }} mono hint="JSON" />;
  }
  return <TextField label={label} name={field} value={shown(value)} onValue={(v) => onValue(v === '' ? null : v)} required={required} placeholder={placeholder} hint={hint} />;
}

/** value: the object being edited; keys set to null are dropped (the default applies). */
export function SchemaFields({ schema, root = schema, value, onChange, path = '' }) {
  const props = schema?.properties || {};
  const required = new Set(schema?.required || []);
  const set = (key) => (v) => {
    const next = { ...value };
    if (v === null || v === undefined) delete next[key];
    else next[key] = v;
    onChange(next);
  };
  const names = Object.keys(props).sort((a, b) => Number(required.has(b)) - Number(required.has(a)));
  return (
    <div class="schema-fields">
      {names.map((key) => (
        <PropField key={key} name={key} prop={props[key]} root={root} value={value?.[key]} onValue={set(key)} required={required.has(key)} path={path} />
      ))}
    </div>
  );
}
