// The cluster: every server, beat and worker process with when it was last seen (a stale one
// missed its heartbeats and goes from the list after the presence TTL), which beat leads, and
// the Redis and database they all share. Refreshed every 2 s while the page is visible.
import { ErrorBox, Loading, PageHead, Stat } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { ago } from '../../format.js';
import { useApi } from '../../hooks.js';

const EVERY_MS = 2000;

/** "3 s ago" as the server measured it when it answered (no browser clock skew), and stale. */
function Seen({ m }) {
  return (
    <span class="seen">
      {Math.round(m.age)} s ago{' '}
      {m.stale && (
        <span class="badge badge-failure" title="missed three heartbeats: stuck, cut off or dead">
          stale
        </span>
      )}
    </span>
  );
}

function Who({ m }) {
  return (
    <>
      <div class="mono">{m.id}</div>
      <div class="muted">
        {m.host} · pid {m.pid}
      </div>
    </>
  );
}

const seenColumn = { label: 'Last seen', render: (m) => <Seen m={m} /> };
const startedColumn = { label: 'Started', render: (m) => ago(m.started) };
const versionColumn = { label: 'Version', key: 'version' };

function Servers({ servers }) {
  return (
    <DataTable
      rows={servers}
      empty="No server running."
      columns={[
        { label: 'Server', render: (m) => <Who m={m} /> },
        { label: 'Address', render: (m) => <span class="mono">{m.url}</span> },
        { label: 'HTTP processes', num: true, key: 'http_processes' },
        { label: 'Subscriptions held', render: (m) => (m.subscriptions.length ? m.subscriptions.join(', ') : <span class="muted">none</span>) },
        { label: 'Hub claims', num: true, render: (m) => m.websub_claims ?? 0 },
        versionColumn,
        startedColumn,
        seenColumn,
      ]}
    />
  );
}

function Beats({ beats, leader }) {
  return (
    <DataTable
      rows={beats}
      empty="No beat running: cron jobs do not fire."
      columns={[
        { label: 'Beat', render: (m) => <Who m={m} /> },
        {
          label: 'State',
          render: (m) => (m.id === leader ? <span class="badge badge-success">leading</span> : <span class="badge">standing by</span>),
        },
        { label: 'Runs in', render: (m) => (m.server ? <span class="mono">server {m.server}</span> : 'fnhub beat') },
        { label: 'Cron jobs', num: true, key: 'jobs' },
        versionColumn,
        startedColumn,
        seenColumn,
      ]}
    />
  );
}

function Workers({ workers }) {
  return (
    <DataTable
      rows={workers}
      empty="No worker running: calls are refused until one runs."
      columns={[
        { label: 'Worker', render: (m) => <Who m={m} /> },
        { label: 'Queues', render: (m) => m.queues.join(', ') },
        { label: 'Processes', num: true, key: 'processes' },
        { label: 'Replaced', num: true, render: (m) => m.replaced ?? 0 },
        versionColumn,
        startedColumn,
        seenColumn,
      ]}
    />
  );
}

function RedisFacts({ r }) {
  return (
    <dl class="facts card">
      <dt>Address</dt>
      <dd class="mono">{r.address}</dd>
      <dt>Role</dt>
      <dd>
        {r.role}
        {r.sentinel ? ' (primary named by Sentinel)' : ''}
      </dd>
      <dt>Version</dt>
      <dd>{r.version}</dd>
      <dt>Memory used</dt>
      <dd>
        {r.used_memory_human}
        {r.maxmemory ? ` of ${(r.maxmemory / 2 ** 20).toFixed(0)} MB` : ''}
      </dd>
      <dt>Replicas</dt>
      <dd>{r.replicas}</dd>
      <dt>Clients</dt>
      <dd>{r.clients}</dd>
      <dt>URL</dt>
      <dd class="mono">{r.url}</dd>
    </dl>
  );
}

function DatabaseFacts({ d }) {
  return (
    <dl class="facts card">
      <dt>Dialect</dt>
      <dd>
        {d.dialect} {d.server_version}
      </dd>
      <dt>Schema</dt>
      <dd>
        <span class="mono" title={d.revision.join(', ')}>
          {d.revision.length > 2 ? `${d.revision.length} migration heads` : d.revision.join(', ') || 'none'}
        </span>{' '}
        {d.current ? <span class="badge badge-success">newest</span> : <span class="badge badge-failure">not the newest: {d.head.join(', ')}</span>}
      </dd>
      <dt>URL</dt>
      <dd class="mono">{d.url}</dd>
    </dl>
  );
}

export function Cluster() {
  const { data, error } = useApi('/cluster', { every: EVERY_MS });
  if (!data) {
    return (
      <div class="page">
        <PageHead title="Cluster" />
        <ErrorBox error={error} />
        {!error && <Loading />}
      </div>
    );
  }
  const stale = [...data.servers, ...data.beats, ...data.workers].filter((m) => m.stale).length;
  const leading = data.beats.some((b) => b.id === data.beat_leader);
  return (
    <div class="page cluster">
      <PageHead title="Cluster">
        <span class="muted small-print">live · every {EVERY_MS / 1000} s · stale members leave after {data.presence_ttl_seconds} s</span>
      </PageHead>
      <ErrorBox error={error} />
      <div class="stats">
        <Stat value={data.servers.length} label="servers" warn={data.servers.length === 0} />
        <Stat value={data.beats.length} label={leading ? 'beats · one leading' : 'beats · none leading'} warn={!leading} />
        <Stat value={data.workers.length} label={`workers · ${data.workers.reduce((n, w) => n + (w.processes || 0), 0)} processes`} warn={data.workers.length === 0} />
        <Stat value={stale} label="stale members" warn={stale > 0} />
      </div>
      <h2>Servers</h2>
      <Servers servers={data.servers} />
      <h2>Beats</h2>
      <Beats beats={data.beats} leader={data.beat_leader} />
      <h2>Workers</h2>
      <Workers workers={data.workers} />
      <div class="two-columns even">
        <section>
          <h2>Redis</h2>
          <RedisFacts r={data.redis} />
        </section>
        <section>
          <h2>Database</h2>
          <DatabaseFacts d={data.database} />
        </section>
      </div>
    </div>
  );
}
