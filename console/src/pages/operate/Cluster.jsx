// The cluster: every server, beat and worker process with when it was last seen (a stale one
// missed its heartbeats: it stays listed, marked, until the presence TTL), which beat leads,
// what each worker's children run, and the Redis and database they all share. Refreshed every
// 2 s while the page is visible.
import { ErrorBox, Loading, PageHead, Stat } from '../../components/bits.jsx';
import { DataTable } from '../../components/DataTable.jsx';
import { ago, dateTime } from '../../format.js';
import { useApi } from '../../hooks.js';

const EVERY_MS = 2000;

/** "3 s ago" as the server measured it when it answered (no browser clock skew); a stale one
 * also says at what time, and when it leaves the list. */
function Seen({ m, ttl }) {
  if (!m.stale) return <span class="seen">{Math.round(m.age)} s ago</span>;
  return (
    <span class="seen">
      <span class="badge badge-failure" title="missed three heartbeats: killed, stuck or cut off from Redis">
        stale
      </span>{' '}
      {Math.round(m.age)} s ago
      <div class="muted">
        at {dateTime(m.last_seen).slice(11)} · leaves in {Math.max(0, Math.round(ttl - m.age))} s
      </div>
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

const seenColumn = (ttl) => ({ label: 'Last seen', render: (m) => <Seen m={m} ttl={ttl} /> });
const startedColumn = { label: 'Started', render: (m) => ago(m.started) };
const versionColumn = { label: 'Version', key: 'version' };

function Servers({ servers, ttl }) {
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
        seenColumn(ttl),
      ]}
    />
  );
}

function Beats({ beats, leader, ttl }) {
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
        seenColumn(ttl),
      ]}
    />
  );
}

/** Its processes and its direct children (`path: direct` subscriptions'). */
const children = (m) => (m.processes || 0) + (m.direct || 0);

/** "1 of 3": children running a task (queue or direct), of the worker's processes and direct
 * children (an older worker: its processes). */
function Busy({ m }) {
  if (m.busy === null || m.busy === undefined) return m.processes;
  return (
    <span title="children running a task now (queue or direct), of its processes and direct children">
      {m.busy} of {children(m)}
    </span>
  );
}

function Workers({ workers, ttl }) {
  return (
    <DataTable
      rows={workers}
      empty="No worker running: calls are refused until one runs."
      columns={[
        { label: 'Worker', render: (m) => <Who m={m} /> },
        { label: 'Queues', render: (m) => m.queues.join(', ') },
        { label: 'Busy', num: true, render: (m) => <Busy m={m} /> },
        { label: 'Replaced', num: true, render: (m) => m.replaced ?? 0 },
        versionColumn,
        startedColumn,
        seenColumn(ttl),
      ]}
    />
  );
}

/** Seconds → "4.2 s", "3 min 12 s". */
function runTime(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** The tasks the workers' children run past 0.1 s, longest first; a stale worker's as it last
 * said (its children died with it, their tasks released to the live workers). */
function Running({ workers }) {
  const rows = workers
    .flatMap((w) => (w.running || []).map((t) => ({ ...t, worker: w })))
    .sort((a, b) => b.running_for - a.running_for);
  return (
    <DataTable
      rows={rows}
      rowKey={(t) => `${t.worker.id} ${t.pid} ${t.since}`}
      empty="No task running for over 0.1 s."
      columns={[
        {
          label: 'Worker',
          render: (t) => (
            <>
              <span class="mono">{t.worker.id}</span>{' '}
              {t.worker.stale && <span class="badge badge-failure" title="its worker is stale: this task was released">lost</span>}
            </>
          ),
        },
        { label: 'Child', render: (t) => <span class="mono">#{t.child} · pid {t.pid}</span> },
        { label: 'Function', render: (t) => <span class="mono">{t.function}</span> },
        { label: 'Task', render: (t) => <span class="mono">{t.task}</span> },
        {
          label: 'From',
          render: (t) =>
            t.subscription ? (
              <>
                {t.subscription} <span class="muted">(direct)</span>
              </>
            ) : (
              t.queue
            ),
        },
        { label: 'Running for', num: true, render: (t) => runTime(t.running_for) },
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
  const ttl = data.presence_ttl_seconds;
  const live = data.workers.filter((w) => !w.stale);
  const busy = live.reduce((n, w) => n + (w.busy || 0), 0);
  return (
    <div class="page cluster">
      <PageHead title="Cluster">
        <span class="muted small-print">live · every {EVERY_MS / 1000} s · stale members leave after {data.presence_ttl_seconds} s</span>
      </PageHead>
      <ErrorBox error={error} />
      <div class="stats">
        <Stat value={data.servers.length} label="servers" warn={data.servers.length === 0} />
        <Stat value={data.beats.length} label={leading ? 'beats · one leading' : 'beats · none leading'} warn={!leading} />
        <Stat value={live.length} label={`workers · ${busy} of ${live.reduce((n, w) => n + children(w), 0)} processes busy`} warn={live.length === 0} />
        <Stat value={stale} label="stale members" warn={stale > 0} />
      </div>
      <h2>Servers</h2>
      <Servers servers={data.servers} ttl={ttl} />
      <h2>Beats</h2>
      <Beats beats={data.beats} leader={data.beat_leader} ttl={ttl} />
      <h2>Workers</h2>
      <Workers workers={data.workers} ttl={ttl} />
      <h2>Running now</h2>
      <Running workers={data.workers} />
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
