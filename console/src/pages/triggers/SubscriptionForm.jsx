// A subscription as a form: connector and topics, what it does (call a function, run an SQL
// rule, or route messages on), where results go, mode and window, and the connector type's
// source options. A refused save (the cycle check of rules and routes, ...) shows as it came.
import { useState } from 'preact/hooks';
import { enc, put } from '../../api.js';
import { CheckField, NumberField, SelectField, TextField } from '../../components/form/fields.jsx';
import { FormDialog } from '../../components/form/FormDialog.jsx';
import { SchemaFields } from '../../components/form/SchemaFields.jsx';
import { useApi } from '../../hooks.js';
import { FunctionList, useFunctionRefs } from './functionRefs.jsx';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const KINDS = [
  ['function', 'call a function'],
  ['sql', 'SQL rule (publish what the query selects)'],
  ['route', 'route (publish each message on)'],
];

function kindOf(s) {
  if (!s) return 'function';
  if (s.function) return 'function';
  return s.sql ? 'sql' : 'route';
}

/** Where a rule publishes: topic, another connector (default: this one), QoS, retain, kind. */
function TargetFields({ label, noun, name, value, onValue, connectors, required }) {
  const t = value || {};
  const set = (k) => (v) => {
    const next = { ...t, [k]: v };
    if (v === null || v === '' || v === undefined) delete next[k];
    onValue(next.topic ? next : null);
  };
  return (
    <fieldset class="nested">
      <legend>{label}</legend>
      <div class="form-grid">
        <TextField label={`${noun} topic`} name={`${name}.topic`} value={t.topic} onValue={set('topic')} required={required} />
        <SelectField label={`${noun} connector`} name={`${name}.connector`} value={t.connector} onValue={set('connector')} options={connectors.map((c) => c.name)} empty="this subscription's" />
        <SelectField label="QoS (MQTT)" name={`${name}.qos`} value={String(t.qos ?? 1)} onValue={(v) => set('qos')(Number(v))} options={['0', '1', '2']} />
        <SelectField label="Kind (Redis)" name={`${name}.kind`} value={t.kind} onValue={set('kind')} options={['pubsub', 'stream']} empty="default" />
        <CheckField label="Retain (MQTT)" name={`${name}.retain`} value={t.retain} onValue={set('retain')} />
      </div>
    </fieldset>
  );
}

export function SubscriptionForm({ subscription: s, onSaved, onClose }) {
  const connectors = useApi('/connectors?limit=500').data?.items || [];
  const types = useApi('/connector-types').data || [];
  const refs = useFunctionRefs();
  const [name, setName] = useState(s?.name ?? '');
  const [kind, setKind] = useState(kindOf(s));
  const [form, setForm] = useState({
    connector: s?.connector ?? '',
    topics: (s?.topics ?? []).join('\n'),
    function: s?.function ?? '',
    sql: s?.sql ?? '',
    mode: s?.mode ?? 'single',
    window: s?.window ?? 100,
    options: s?.options ?? {},
    publish: s?.publish ?? null,
    error_publish: s?.error_publish ?? null,
    queue: s?.queue ?? '',
    record: s?.record ?? true,
    record_limit: s?.record_limit ?? null,
    enabled: s?.enabled ?? true,
    path: s?.path ?? 'queued',
  });
  const set = (k) => (v) => setForm((f) => ({ ...f, [k]: v }));
  const connectorType = connectors.find((c) => c.name === form.connector)?.type;
  const optionsSchema = types.find((t) => t.type === connectorType)?.source_options;

  const save = async () => {
    if (!NAME.test(name)) throw new Error('A name is letters, digits, . _ or - (starting with a letter or digit).');
    const topics = form.topics.split('\n').map((t) => t.trim()).filter(Boolean);
    const body = {
      connector: form.connector,
      topics,
      mode: form.mode,
      window: form.window ?? 100,
      options: form.options,
      record: form.record,
      enabled: form.enabled,
    };
    if (kind === 'function') {
      body.function = form.function.trim();
      body.path = form.path;
    }
    if (kind === 'sql') body.sql = form.sql;
    if (form.publish) body.publish = form.publish;
    if (form.error_publish) body.error_publish = form.error_publish;
    if (form.queue) body.queue = form.queue;
    if (form.record_limit !== null) body.record_limit = form.record_limit;
    await put(`/subscriptions/${enc(name)}`, body);
    onSaved();
  };

  return (
    <FormDialog title={s ? `Subscription ${s.name}` : 'New subscription'} onSave={save} onClose={onClose}>
      <div class="form-grid">
        {!s && <TextField label="Name" name="name" value={name} onValue={setName} required />}
        <SelectField label="Connector" name="connector" value={form.connector} onValue={set('connector')} options={connectors.map((c) => [c.name, `${c.name} (${c.type})`])} empty="choose one" required />
        <SelectField label="Mode" name="mode" value={form.mode} onValue={set('mode')} options={[['single', 'single: one server holds it'], ['multiple', 'multiple: every server, shared']]} />
        <NumberField label="Window" name="window" value={form.window} onValue={set('window')} min={1} max={65535} hint="messages in flight" />
      </div>
      <TextField label="Topics" name="topics" value={form.topics} onValue={set('topics')} multiline rows={2} mono hint="one per line; MQTT wildcards + and # work" required />
      <SelectField label="What it does" name="kind" value={kind} onValue={setKind} options={KINDS} />
      {kind === 'function' && (
        <>
          <TextField label="Function" name="function" value={form.function} onValue={set('function')} list="subscription-functions" placeholder="script.function" required />
          <FunctionList id="subscription-functions" refs={refs} />
          <SelectField label="Path" name="path" value={form.path} onValue={set('path')} options={[['queued', 'queued: the server reads, workers run tasks'], ['direct', 'direct: workers read the broker (Redis Streams, Kafka)']]} />
        </>
      )}
      {kind === 'sql' && <TextField label="SQL" name="sql" value={form.sql} onValue={set('sql')} multiline rows={4} mono placeholder="SELECT temp, topic() AS source FROM 'sensors/+' WHERE temp > 30" required />}
      {kind !== 'function' && <TargetFields label="Publish to" noun="Output" name="publish" value={form.publish} onValue={set('publish')} connectors={connectors} required={kind === 'route'} />}
      {optionsSchema && Object.keys(optionsSchema.properties || {}).length > 0 && (
        <details class="nested-details">
          <summary>{connectorType} source options</summary>
          <SchemaFields schema={optionsSchema} value={form.options} onChange={set('options')} path="options." />
        </details>
      )}
      <details class="nested-details">
        <summary>Results, errors and records</summary>
        {kind === 'function' && <TargetFields label="Publish each result to" noun="Output" name="publish" value={form.publish} onValue={set('publish')} connectors={connectors} />}
        <TargetFields label="Publish errors to" noun="Error" name="error_publish" value={form.error_publish} onValue={set('error_publish')} connectors={connectors} />
        <div class="form-grid">
          <TextField label="Queue" name="queue" value={form.queue} onValue={set('queue')} placeholder="sub" />
          <NumberField label="Record limit" name="record_limit" value={form.record_limit} onValue={set('record_limit')} min={0} hint="newest records kept" />
          <CheckField label="Record tasks" name="record" value={form.record} onValue={set('record')} />
        </div>
      </details>
      <CheckField label="Enabled" name="enabled" value={form.enabled} onValue={set('enabled')} />
    </FormDialog>
  );
}
