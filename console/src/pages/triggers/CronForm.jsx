// A cron job as a form: function, schedule (5 or 6 fields) and time zone, fixed kwargs,
// misfire and overlap rules, queue, expiry. The server checks the expression and the function.
import { useState } from 'preact/hooks';
import { enc, post, put } from '../../api.js';
import { CheckField, NumberField, SelectField, TextField } from '../../components/form/fields.jsx';
import { FormDialog } from '../../components/form/FormDialog.jsx';
import { KwargsEditor, kwargsOfRows, rowsOf } from '../../components/form/KwargsEditor.jsx';
import { fromLocalInput, toLocalInput } from '../../format.js';
import { FunctionList, useFunctionRefs } from './functionRefs.jsx';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ZONES = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];

export function CronForm({ job, onSaved, onClose }) {
  const refs = useFunctionRefs();
  const [form, setForm] = useState({
    id: job?.id ?? '',
    function: job?.function ?? '',
    expr: job?.expr ?? '',
    timezone: job?.timezone ?? '',
    title: job?.title ?? '',
    enabled: job?.enabled ?? true,
    misfire: job?.misfire ?? 'skip',
    overlap: job?.overlap ?? 'skip',
    queue: job?.queue ?? '',
    record_limit: job?.record_limit ?? null,
    expires_at: job?.expires_at ?? null,
  });
  const [rows, setRows] = useState(rowsOf(job?.kwargs));
  const set = (k) => (v) => setForm((f) => ({ ...f, [k]: v }));
  const save = async () => {
    if (!ID.test(form.id)) throw new Error('An id is 1-128 letters, digits, _ - or ., starting with a letter or digit.');
    const body = { id: form.id, function: form.function.trim(), kwargs: kwargsOfRows(rows), enabled: form.enabled, misfire: form.misfire, overlap: form.overlap, title: form.title };
    for (const k of ['expr', 'timezone', 'queue']) if (form[k]) body[k] = form[k].trim();
    for (const k of ['record_limit', 'expires_at']) if (form[k] !== null && form[k] !== '') body[k] = form[k];
    if (job) await put(`/cron-jobs/${enc(job.id)}`, body);
    else await post('/cron-jobs', body);
    onSaved();
  };
  return (
    <FormDialog title={job ? `Cron job ${job.id}` : 'New cron job'} onSave={save} onClose={onClose}>
      <div class="form-grid">
        {!job && <TextField label="Id" name="id" value={form.id} onValue={set('id')} required />}
        <TextField label="Function" name="function" value={form.function} onValue={set('function')} list="cron-functions" placeholder="script.function" required />
        <TextField label="Title" name="title" value={form.title} onValue={set('title')} />
      </div>
      <FunctionList id="cron-functions" refs={refs} />
      <div class="form-grid">
        <TextField label="Schedule" name="expr" value={form.expr} onValue={set('expr')} mono placeholder="*/5 * * * *" hint="5 fields (minutes) or 6 (seconds first); empty: the function's fixed_crontab" />
        <TextField label="Time zone" name="timezone" value={form.timezone} onValue={set('timezone')} list="cron-zones" placeholder="the server's default" />
      </div>
      <datalist id="cron-zones">
        {ZONES.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      <KwargsEditor label="Arguments" rows={rows} onRows={setRows} />
      <div class="form-grid">
        <SelectField label="Missed runs" name="misfire" value={form.misfire} onValue={set('misfire')} options={[['skip', 'skip them'], ['run_once', 'run once when back']]} />
        <SelectField label="While the last run still runs" name="overlap" value={form.overlap} onValue={set('overlap')} options={[['skip', 'skip this one'], ['allow', 'run anyway']]} />
        <TextField label="Queue" name="queue" value={form.queue} onValue={set('queue')} placeholder="the function's, else cron" />
        <NumberField label="Record limit" name="record_limit" value={form.record_limit} onValue={set('record_limit')} min={0} hint="newest records kept" />
        <label>
          Expires
          <input type="datetime-local" name="expires_at" value={toLocalInput(form.expires_at)} onInput={(e) => set('expires_at')(fromLocalInput(e.currentTarget.value) || null)} />
        </label>
      </div>
      <CheckField label="Enabled" name="enabled" value={form.enabled} onValue={set('enabled')} />
    </FormDialog>
  );
}
