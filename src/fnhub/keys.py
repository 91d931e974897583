"""Every Redis key fnhub uses, in one place, so the layout can be read (and changed) at a glance."""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"
RECORDER_GROUP = "recorders"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "fnhub"

    def queue(self, name: str) -> str:
        """Stream of task envelopes for one queue; consumer group `workers`."""
        return f"{self.prefix}:q:{name}"

    @property
    def bundled(self) -> str:
        """Hash queue stream → how many more tasks it holds than entries (a bundle entry of n
        tasks adds n - 1), so queue lengths count tasks."""
        return f"{self.prefix}:q-bundled"

    @property
    def bundles(self) -> str:
        """Hash of the progress of bundle entries being run: `done|<stream>|<entry id>` → tasks
        finished (a prefix), `end|<stream>|<entry id>` → tasks the child kept (the rest were
        handed back). Fields exist only while their entry is pending and needs them."""
        return f"{self.prefix}:q-bundles"

    @property
    def delayed(self) -> str:
        """Sorted set `<queue>|<task id>` scored by the time the task becomes due."""
        return f"{self.prefix}:delayed"

    @property
    def delayed_tasks(self) -> str:
        """Hash task id → envelope for delayed tasks."""
        return f"{self.prefix}:delayed:tasks"

    @property
    def dead(self) -> str:
        """Stream of dead letters: tasks that exhausted their attempts (or, with the function's
        `dead_letter` option, failed or timed out); fields e, reason, at, id, fn."""
        return f"{self.prefix}:dead"

    @property
    def dead_ids(self) -> str:
        """Hash task id → its entry in the dead-letter stream, to find a dead letter by task."""
        return f"{self.prefix}:dead:ids"

    @property
    def records(self) -> str:
        """Stream of task results waiting to be written to the database in batches."""
        return f"{self.prefix}:records"

    @property
    def records_poison(self) -> str:
        """Stream of records entries (or single results) that could not be written, each with
        `poison_reason` and `poison_entry` (the records entry it came from), for a person to
        read, fix or XADD back to `records`; capped."""
        return f"{self.prefix}:records:poison"

    def reply(self, caller_id: str) -> str:
        """Stream a waiting caller (a server, a CLI) reads its tasks' results from."""
        return f"{self.prefix}:reply:{caller_id}"

    @property
    def workers(self) -> str:
        """Hash worker id → JSON description (queues, processes, host, pid)."""
        return f"{self.prefix}:workers"

    def worker_alive(self, worker_id: str) -> str:
        """Key with a short TTL, refreshed by a live worker's heartbeat."""
        return f"{self.prefix}:worker:{worker_id}:alive"

    def reclaim_lock(self, queue: str, consumer: str) -> str:
        """One per queue and consumer: a worker's consumer names are the same on every queue,
        and each queue's entries are released on their own."""
        return f"{self.prefix}:lock:reclaim:{queue}:{consumer}"

    @property
    def scripts(self) -> str:
        """Hash script name → JSON {version, hash, functions, language} of the active version."""
        return f"{self.prefix}:scripts"

    @property
    def scripts_revision(self) -> str:
        """Counter bumped on every publish, so caches know when to reload."""
        return f"{self.prefix}:scripts:rev"

    @property
    def scripts_mirrored(self) -> str:
        """The time (epoch s) of the last mirror of the scripts (`ScriptStore.sync_redis`): its
        absence says Redis lost fnhub's data (restarted empty, flushed), and a server mirrors
        them again (`scripts.mirror_watch`)."""
        return f"{self.prefix}:scripts:mirrored"

    @property
    def scripts_restore(self) -> str:
        """Short lease of the server restoring the scripts' mirror (`scripts.mirror_watch`)."""
        return f"{self.prefix}:scripts:restore"

    def script_code(self, name: str, hash_: str) -> str:
        """Code of one immutable script version."""
        return f"{self.prefix}:script:{name}:{hash_}"

    @property
    def node_packages(self) -> str:
        """Hash {hash, package.json, package-lock.json}: the project's npm packages, which
        every worker installs (`npm ci`) into its own data folder (`node.packages`)."""
        return f"{self.prefix}:node:packages"

    def task_status(self, task_id: str) -> str:
        """Encoded TaskResult of a task submitted with a status key: queued, running, then final."""
        return f"{self.prefix}:task:{task_id}"

    def concurrency(self, function: str) -> str:
        """Sorted set of task ids running a function with a concurrency limit, scored by expiry."""
        return f"{self.prefix}:conc:{function}"

    @property
    def stats(self) -> str:
        """Hash of task counters and run-time histogram buckets, read by `/metrics`."""
        return f"{self.prefix}:stats"

    def stats_minute(self, minute: int) -> str:
        """Hash of one minute's (epoch seconds // 60) task counts and run-time buckets per
        function (`fnhub.minute_stats`); expires about an hour later."""
        return f"{self.prefix}:stats:m:{minute}"

    @property
    def project_revision(self) -> str:
        """Counter bumped by every `fnhub apply` (and `serve --reload`): servers reload their
        scripts and endpoints when it moves and acknowledge it in `servers`."""
        return f"{self.prefix}:project:rev"

    @property
    def project_sections(self) -> str:
        """Set of the `fnhub.yaml` sections the last apply declared: a later apply without one
        of them applies it as empty, removing what it provisioned."""
        return f"{self.prefix}:project:sections"

    @property
    def servers(self) -> str:
        """Hash server id → JSON {host, pid, url, started, beat, project_rev, ...}: the HTTP
        servers announcing themselves (a beat every second, `fnhub.presence`), so `fnhub apply`
        knows who picked it up and `fnhub cluster` who runs."""
        return f"{self.prefix}:servers"

    @property
    def loop_restarts(self) -> str:
        """Hash loop name → restarts of that long-lived loop after an unexpected error, added by
        every server and worker process (`fnhub.supervised`), read by `/metrics`."""
        return f"{self.prefix}:loops:restarts"

    @property
    def endpoints_revision(self) -> str:
        """Counter bumped when an HTTP endpoint changes, so servers reload their copies."""
        return f"{self.prefix}:endpoints:rev"

    @property
    def envs_revision(self) -> str:
        """Counter bumped when an env variable changes, so workers reload their copies."""
        return f"{self.prefix}:envs:rev"

    def throttle(self, endpoint: str, unit: str, window: int) -> str:
        """Request counter of one endpoint in one fixed window (second, minute, hour, day)."""
        return f"{self.prefix}:throttle:{endpoint}:{unit}:{window}"

    def nonce(self, endpoint: str, nonce: str) -> str:
        """A seen HMAC nonce, kept as long as its timestamp is acceptable (replay guard)."""
        return f"{self.prefix}:nonce:{endpoint}:{nonce}"

    def cache(self, scope: str, key: str) -> str:
        return f"{self.prefix}:cache:{scope}:{key}"

    # --- WebSub hub (fnhub.websub) ---------------------------------------------------------

    def websub_topic(self, topic_hash: str) -> str:
        """Stream of one hub topic's notifications (Redis store); fields ct, body, ts."""
        return f"{self.prefix}:websub:topic:{topic_hash}"

    @property
    def websub_cursors(self) -> str:
        """Hash subscription id → position of its last delivered (or dead-lettered) entry."""
        return f"{self.prefix}:websub:cursors"

    def websub_owner(self, subscription_id: str) -> str:
        """Short-TTL key naming the hub server that delivers this subscription now."""
        return f"{self.prefix}:websub:owner:{subscription_id}"

    def websub_stats(self, subscription_id: str) -> str:
        """Hash of one subscription's delivery counters (delivered, failures, last delivery)."""
        return f"{self.prefix}:websub:stats:{subscription_id}"

    def websub_redeliver(self, subscription_id: str) -> str:
        """List of dead letters put back for delivery (the retry action), before new entries."""
        return f"{self.prefix}:websub:redeliver:{subscription_id}"

    @property
    def websub_intents(self) -> str:
        """Stream of (un)subscription requests waiting for intent verification."""
        return f"{self.prefix}:websub:intents"

    @property
    def websub_verify_attempts(self) -> str:
        """Hash: intent entry id → verifications of it that failed for an unexpected error."""
        return f"{self.prefix}:websub:intents:attempts"

    @property
    def websub_failed_intents(self) -> str:
        """Stream (capped) of intents given up after unexpected errors, with the reason."""
        return f"{self.prefix}:websub:intents:failed"

    @property
    def websub_events(self) -> str:
        """Pub/sub channel: `n:<topic hash>` new notification, `s` subscriptions changed."""
        return f"{self.prefix}:websub:events"

    @property
    def websub_servers(self) -> str:
        """Sorted set hub server id → heartbeat time, to share subscriptions fairly."""
        return f"{self.prefix}:websub:servers"

    @property
    def websub_metrics(self) -> str:
        """Hash of cluster-wide hub counters."""
        return f"{self.prefix}:websub:metrics"

    @property
    def websub_stored(self) -> str:
        """Hash topic hash → bytes of notification bodies its stream holds (Redis store)."""
        return f"{self.prefix}:websub:stored"

    @property
    def websub_stored_total(self) -> str:
        """Bytes of notification bodies all topic streams hold (the global storage cap)."""
        return f"{self.prefix}:websub:stored:total"

    @property
    def websub_dropped(self) -> str:
        """Hash topic hash → notifications dropped unread because the topic was over its cap."""
        return f"{self.prefix}:websub:dropped"

    def websub_starting(self, topic_hash: str) -> str:
        """Set of tokens of the subscriptions to the topic whose start is being taken (verified,
        cursor not yet written): publishes store and the reclaimer keeps what comes (`reclaim`)."""
        return f"{self.prefix}:websub:starting:{topic_hash}"

    @property
    def websub_reclaim_lease(self) -> str:
        """Short lease of the hub server running the next reclaim pass."""
        return f"{self.prefix}:websub:reclaim"

    @property
    def websub_ingest(self) -> str:
        """Stream scripts write to when the hub store is Kafka; hub servers forward it."""
        return f"{self.prefix}:websub:ingest"

    @property
    def websub_kafka_end(self) -> str:
        """Hash topic hash → next Kafka offset the hub wrote (Tansu's `latest` is unreliable)."""
        return f"{self.prefix}:websub:kafka:end"

    def running_marker(self, owner: str) -> str:
        """Set by a trigger while a task runs; deleted with the task's final result (overlap)."""
        return f"{self.prefix}:running:{owner}"

    @property
    def running_marker_prefix(self) -> str:
        return f"{self.prefix}:running:"

    @property
    def beats(self) -> str:
        """Hash beat id → JSON {host, pid, version, started, beat, every, leading}: the cron
        beats announcing themselves (`fnhub.presence`), for `fnhub cluster` and the console."""
        return f"{self.prefix}:beats"

    @property
    def beat_leader(self) -> str:
        """Lease (beat id, short TTL) held by the one beat that fires cron ticks."""
        return f"{self.prefix}:beat:leader"

    @property
    def cron_revision(self) -> str:
        """Counter bumped on every change of cron jobs (API, CLI, fnhub.yaml)."""
        return f"{self.prefix}:cron:rev"

    @property
    def cron_fired(self) -> str:
        """Hash job id → last tick decided (epoch s): each (job, tick) is decided once."""
        return f"{self.prefix}:cron:fired"

    @property
    def cron_dynamic(self) -> str:
        """Hash job id → JSON {expr, until}: expressions set by scripts at run time."""
        return f"{self.prefix}:cron:dynamic"

    @property
    def cron_dynamic_revision(self) -> str:
        return f"{self.prefix}:cron:dynamic:rev"

    @property
    def cron_pause_all(self) -> str:
        """Present (optionally with a TTL) while every cron job is paused."""
        return f"{self.prefix}:cron:pause:all"

    def cron_pause(self, job_id: str) -> str:
        """Present (optionally with a TTL) while one cron job is paused."""
        return f"{self.prefix}:cron:pause:job:{job_id}"

    @property
    def cron_pause_prefix(self) -> str:
        return f"{self.prefix}:cron:pause:job:"

    # -- subscriptions ------------------------------------------------------------------------
    @property
    def subscriptions_revision(self) -> str:
        """Counter bumped on every change of subscriptions or connectors."""
        return f"{self.prefix}:subs:rev"

    def subscription_lease(self, name: str) -> str:
        """Holder (server id) of a `single` subscription, with a short TTL renewed while alive."""
        return f"{self.prefix}:subs:lease:{name}"

    def subscription_members(self, name: str) -> str:
        """Sorted set of the members sharing a `multiple` subscription's partitions under
        leases (Kafka `assignment: lease`), scored by when each lapses (`fnhub.shares`)."""
        return f"{self.prefix}:subs:members:{name}"

    def subscription_share(self, name: str) -> str:
        """Prefix of the leases of a subscription's partitions: + `<topic>:<partition>`, the
        holder's member id, with a short TTL renewed while it reads (`fnhub.shares`)."""
        return f"{self.prefix}:subs:share:{name}:"

    def subscription_status(self, name: str) -> str:
        """Hash server id → JSON status of one subscription on that server (TTL'd)."""
        return f"{self.prefix}:subs:status:{name}"

    def subscription_fates(self, name: str) -> str:
        """Hash of what happened to the message a direct child was running when it was killed
        or died (`c|<stream> <entry id>`: deaths; `f|...`: final outcome), read by the child
        that claims the message next (`worker.direct`)."""
        return f"{self.prefix}:subs:fates:{name}"

    # -- accounts -----------------------------------------------------------------------------
    def signin_failures(self, kind: str, who: str) -> str:
        """Sorted set of recent failed sign-ins (scored by time in ms) of one username hash
        (`kind` "user") or client address (`kind` "ip"), for sign-in throttling."""
        return f"{self.prefix}:signin:{kind}:{who}"
