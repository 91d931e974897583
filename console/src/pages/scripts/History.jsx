// A script's versions, newest first: compare any version with the one before it (or with the
// active one) and roll back to it.
import { useEffect, useState } from 'preact/hooks';
import { enc, get, post } from '../../api.js';
import { ErrorBox, Loading } from '../../components/bits.jsx';
import { confirmAction } from '../../components/Dialog.jsx';
import { dateTime } from '../../format.js';
import { useAction, useApi } from '../../hooks.js';
import { can } from '../../session.js';
import { DiffView } from './DiffView.jsx';

const codeCache = new Map();
async function codeOf(name, version) {
  const key = `${name}@${version}`;
  if (!codeCache.has(key)) {
    codeCache.set(key, get(`/scripts/${enc(name)}/versions/${version}`).then((v) => v.code));
  }
  try {
    return await codeCache.get(key);
  } catch (exc) {
    codeCache.delete(key);
    throw exc;
  }
}

export function History({ name, user, onRolledBack }) {
  const versions = useApi(`/scripts/${enc(name)}/versions`);
  const [picked, setPicked] = useState(null);
  const [against, setAgainst] = useState('previous');
  const [diff, setDiff] = useState(null);
  const [diffError, setDiffError] = useState(null);
  const list = versions.data ? [...versions.data].sort((a, b) => b.version - a.version) : null;
  const active = list?.find((v) => v.active);
  const selected = list?.find((v) => v.version === picked) ?? list?.[0];

  useEffect(() => {
    if (!selected || !list) return;
    const older = list.find((v) => v.version < selected.version);
    const other = against === 'active' ? active : older;
    setDiffError(null);
    Promise.all([other ? codeOf(name, other.version) : '', codeOf(name, selected.version)]).then(
      ([before, after]) => setDiff({ before, after, from: other?.version, to: selected.version }),
      setDiffError,
    );
  }, [selected?.version, against, active?.version, list?.length]);

  const rollback = useAction(
    async (version) => {
      await post(`/scripts/${enc(name)}/rollback`, { version });
      versions.reload();
      onRolledBack();
    },
    { done: 'Rolled back' },
  );

  if (versions.error) return <ErrorBox error={versions.error} />;
  if (!list) return <Loading what="versions" />;
  return (
    <div class="history">
      <table class="table versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Published</th>
            <th>Functions</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((v) => (
            <tr key={v.version} class={v.version === selected?.version ? 'selected' : ''} onClick={() => setPicked(v.version)}>
              <td>
                <button type="button" class="link" onClick={() => setPicked(v.version)}>
                  v{v.version}
                </button>{' '}
                {v.active && <span class="badge badge-success">active</span>}
              </td>
              <td>{dateTime(v.created_at)}</td>
              <td class="muted">{v.functions.join(', ')}</td>
              <td class="actions">
                {can(user, 'write') && !v.active && (
                  <button
                    type="button"
                    class="small"
                    disabled={rollback.busy}
                    onClick={(e) => {
                      e.stopPropagation();
                      if (confirmAction(`Make v${v.version} of ${name} the active version?`)) rollback.run(v.version);
                    }}
                  >
                    Roll back to v{v.version}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <strong>v{selected?.version}</strong>
        <span class="muted">compared with</span>
        <select value={against} onChange={(e) => setAgainst(e.currentTarget.value)} aria-label="Compare with">
          <option value="previous">the version before it</option>
          <option value="active">the active version</option>
        </select>
        {diff && <span class="muted">{diff.from ? `v${diff.from} (left) → v${diff.to} (right)` : 'first version'}</span>}
      </div>
      <ErrorBox error={diffError} />
      {diff && <DiffView key={`${diff.from}-${diff.to}`} before={diff.before} after={diff.after} language={selected?.language} />}
    </div>
  );
}
