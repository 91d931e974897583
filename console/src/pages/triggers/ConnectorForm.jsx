// A connector as a form: name, type, description and the type's settings (fields from the
// server's own validation models). Secrets come masked and stay as stored unless retyped.
import { useState } from 'preact/hooks';
import { enc, put } from '../../api.js';
import { Loading } from '../../components/bits.jsx';
import { SelectField, TextField } from '../../components/form/fields.jsx';
import { FormDialog } from '../../components/form/FormDialog.jsx';
import { SchemaFields } from '../../components/form/SchemaFields.jsx';
import { useApi } from '../../hooks.js';

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function ConnectorForm({ connector, onSaved, onClose }) {
  const types = useApi('/connector-types');
  const [name, setName] = useState(connector?.name ?? '');
  const [type, setType] = useState(connector?.type ?? 'mqtt');
  const [description, setDescription] = useState(connector?.description ?? '');
  const [settings, setSettings] = useState(connector?.settings ?? {});
  const schema = types.data?.find((t) => t.type === type)?.settings;
  const save = async () => {
    if (!NAME.test(name)) throw new Error('A name is 1-128 letters, digits, . _ or -.');
    await put(`/connectors/${enc(name)}`, { type, description, settings });
    onSaved();
  };
  return (
    <FormDialog title={connector ? `Connector ${connector.name}` : 'New connector'} onSave={save} onClose={onClose}>
      <div class="form-grid">
        {!connector && <TextField label="Name" name="name" value={name} onValue={setName} required />}
        <SelectField
          label="Type"
          name="type"
          value={type}
          onValue={(t) => {
            setType(t);
            if (t !== type) setSettings({});
          }}
          options={(types.data || [{ type }]).map((t) => t.type)}
        />
        <TextField label="Description" name="description" value={description} onValue={setDescription} />
      </div>
      <h3 class="form-section">Settings</h3>
      {types.data ? schema ? <SchemaFields schema={schema} value={settings} onChange={setSettings} /> : <p class="muted">No settings known for this type.</p> : <Loading what="connector types" />}
    </FormDialog>
  );
}
