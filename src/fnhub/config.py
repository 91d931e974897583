"""Settings: one object, layered by pydantic-settings' own sources, highest first:

1. keyword arguments (the command line's flags: `fnhub serve --port 9000`),
2. `FNHUB_<NAME>` environment variables,
3. the `settings:` section of the project's `fnhub.yaml`,
4. the defaults below.

Every process role (server, worker, beat, CLI) builds the same `Settings`, so a value set once in
the environment holds everywhere. Empty `redis_url` / `db_url` mean "embedded defaults": a private
Redis-protocol server and SQLite, both under `data_dir`.

A name no setting has is refused, not ignored: a key under `settings:` in `fnhub.yaml`, an
`FNHUB_*` environment variable (except the test suite's `FNHUB_TEST_*` and the few in
`NOT_SETTINGS`) or a keyword argument; the error names the nearest known one. List settings take
`a,b` as well as JSON (`["a", "b"]`) in environment variables.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic_settings
import yaml
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_QUEUES = ("sync", "async", "cron", "sub", "debug", "system")
PROJECT_FILE = "fnhub.yaml"
ENV_PREFIX = "FNHUB_"
#: FNHUB_* environment variables that are not settings, so never refused: the test suite's own
#: (FNHUB_TEST_REDIS_URL...), the API key the HTTP examples in docs/http.md export, the
#: install's switch for the console build (hatch_build.py) and the console tests' screenshots
#: folder (docs/console.md)
NOT_SETTINGS_PREFIX = "FNHUB_TEST_"
NOT_SETTINGS = frozenset({"FNHUB_KEY", "FNHUB_SKIP_CONSOLE_BUILD", "FNHUB_CONSOLE_SCREENSHOTS"})
#: settings that locate the project, so cannot be set inside its fnhub.yaml
NOT_IN_PROJECT_FILE = frozenset({"project_dir"})


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it, where it came from and, for an
    unknown name, the nearest known one."""


def _split_names(value: Any) -> Any:
    """A list setting from `a,b` (the plain form for environment variables) or a JSON list."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


#: a list of names: `a,b` or `["a", "b"]` in an environment variable, a list in fnhub.yaml
NameList = Annotated[list[str], NoDecode, BeforeValidator(_split_names)]


def nearest(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest known name, or a pointer to the full list."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if match:
        return f" (did you mean '{match[0]}'?)"
    return " (`fnhub settings` lists them all)"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def unknown_env_names(environ: Iterable[str], fields: Iterable[str]) -> list[str]:
    """The `FNHUB_*` variables in `environ` that are no setting (nor exempt), sorted."""
    known = {env_name(f) for f in fields}
    unknown = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in NOT_SETTINGS:
            continue
        if not upper.startswith(NOT_SETTINGS_PREFIX):
            unknown.append(name)
    return sorted(unknown)


def _refuse_unknown_env(fields: Iterable[str]) -> None:
    fields = list(fields)
    unknown = unknown_env_names(os.environ, fields)
    if unknown:
        known = [env_name(f) for f in fields]
        lines = [f"unknown environment variable {n}{nearest(n.upper(), known)}" for n in unknown]
        raise SettingsError("; ".join(lines))


def load_project_file(project_dir: Path) -> dict[str, Any]:
    """Read `fnhub.yaml` (empty dict when absent); errors name the file."""
    path = project_dir / PROJECT_FILE
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


class ProjectFileSource(YamlConfigSettingsSource):
    """The `settings:` section of `<project_dir>/fnhub.yaml` (nothing when there is no
    project); a key no setting has is refused."""

    def __init__(self, settings_cls: type[BaseSettings], project_dir: Path | str | None) -> None:
        path = None if project_dir is None else Path(project_dir) / PROJECT_FILE
        self.known = [f for f in settings_cls.model_fields if f not in NOT_IN_PROJECT_FILE]
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = Path(file_path)
        section = load_project_file(path.parent).get("settings") or {}
        if not isinstance(section, dict):
            raise SettingsError(f"{path}: `settings:` must be a mapping of setting: value")
        for key in section:
            if key not in self.known:
                raise SettingsError(
                    f"{path}: unknown setting '{key}' under `settings:`"
                    + nearest(str(key), self.known)
                )
        return section


class Settings(BaseSettings):
    """Process-wide settings. Field names map to `FNHUB_<NAME>` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    project_dir: Path = Path(".")
    data_dir: Path = Path(".fnhub")
    redis_url: str = ""
    db_url: str = ""
    secret_key: str = ""
    key_prefix: str = "fnhub"
    node_name: str = ""  # stable name of this machine (MQTT client ids); default: host name

    # task defaults and limits
    default_timeout: float = 30.0
    max_timeout: float = 3600.0
    default_expires: float = 900.0
    max_attempts: int = 3
    kwargs_max_bytes: int = 1_000_000
    result_max_bytes: int = 1_000_000
    log_max_bytes: int = 64_000
    queue_max_length: int = 100_000
    #: replicas that must have a submitted task before it is answered 202 (Redis `WAIT`; a
    #: failover then cannot drop it, `fnhub.redis_wait`); unset: 1 on a `redis+sentinel://`
    #: URL, 0 otherwise. 0: answered as soon as the primary has it
    enqueue_replicas: int | None = Field(default=None, ge=0)
    #: seconds a submission waits for those replicas before it is refused (503 `not_replicated`)
    enqueue_replicas_timeout: float = Field(default=1.0, gt=0)

    # worker
    queues: NameList = Field(default_factory=lambda: list(DEFAULT_QUEUES))
    processes: int = 2
    #: most tasks a worker child reads at once (it starts at 1 and grows while tasks finish
    #: quickly; at least one entry, however large a bundle; see worker.child.ReadSize and
    #: worker.prefetch)
    prefetch: int = 128
    #: resident memory a worker child may hold (with the processes its tasks started), in MB;
    #: past it the supervisor kills the child and its running task fails with
    #: `MemoryLimitExceeded` (polled every 50 ms, so a fast allocation may overshoot a little).
    #: 0: no limit
    child_memory_limit_mb: int = 1024
    shutdown_grace_seconds: float = 10.0
    #: a worker supervisor's heartbeat period (its description; its heartbeat key is renewed
    #: four times a beat); a worker whose key lapses (3.5 beats, at least 3 s) is dead, and so
    #: is one that missed two renewals and has no connection open to Redis any more (its
    #: process died) on two checks a renewal apart; a live supervisor looks at the workers
    #: holding tasks at each renewal and releases their tasks: 0.5-1 s from a kill -9 to the
    #: tasks running elsewhere (3.25-3.75 s where CLIENT LIST is not allowed)
    heartbeat_seconds: float = 1.0
    #: a server, beat or worker that stopped heartbeating is shown stale after 3 beats, and
    #: gone from `fnhub cluster` and the console after this long (`fnhub.presence`)
    presence_ttl_seconds: float = Field(default=60.0, gt=0)

    # JavaScript functions (docs/node.md)
    node_path: str | None = None  # the `node` to run (>= 18); default: the one on PATH
    #: V8's heap limit of each worker child's Node process (`--max-old-space-size`), in MB
    node_max_old_space_mb: int = 512

    # task records
    records_enabled: bool = True
    records_keep_per_origin: int = 1000
    records_max_age_days: float = 30.0

    # HTTP server
    host: str = "127.0.0.1"
    port: int = 8090
    #: HTTP processes serving `host:port` (`fnhub server --workers N`, `fnhub serve
    #: --http-processes N`): one process is the HTTP ceiling (`fnhub.server.processes`)
    http_processes: int = Field(default=1, ge=1)
    body_max_bytes: int = 10_000_000
    access_log: bool = True  # one JSON line per request on the `fnhub.access` logger
    #: every role's log lines: "text", or "json" (one object per line: time, level, logger,
    #: message, exception; `fnhub.log_setup`)
    log_format: Literal["text", "json"] = "text"
    #: OpenTelemetry traces (`fnhub.tracing`, the `otel` extra): "none" (nothing imported,
    #: nothing recorded), "otlp" (the OTLP/HTTP exporter, configured by the standard
    #: `OTEL_EXPORTER_OTLP_*` variables), or "file" (one JSON object per span, a file per
    #: process under `tracing_dir`: for looking without a collector, and for tests)
    tracing: Literal["none", "otlp", "file"] = "none"
    tracing_dir: str = ""  # "file" tracing's folder; default: `<data_dir>/traces`
    metrics_auth: bool = False  # /metrics needs an API key or session (any role) when true
    #: headers and kwargs whose values task records show as "[redacted]" (case-insensitive,
    #: `_` = `-`); an endpoint's own credential field is always added (docs/http.md)
    redact_names: NameList = Field(
        default_factory=lambda: ["Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"]
    )
    #: the console's live feed (`/api/v1/events`): one snapshot per server every
    #: `console_feed_seconds` while a page listens, a heartbeat comment every
    #: `console_heartbeat_seconds`
    console_feed_seconds: float = 1.0
    console_heartbeat_seconds: float = 15.0

    # console accounts (fnhub.accounts; docs/http.md "Authentication")
    session_idle_seconds: float = 12 * 3600.0  # a session unused this long ends
    session_max_seconds: float = 7 * 86400.0  # and every session ends this long after sign-in
    session_cookie_secure: bool = False  # always mark the cookie Secure (it is over TLS anyway)
    signin_user_failures: int = 5  # failed sign-ins per username within the window ...
    signin_ip_failures: int = 20  # ... and per client address, before 429 until the window passes
    signin_window_seconds: float = 900.0

    # WebSub hub (fnhub.websub; docs/websub.md)
    websub_hub_url: str = ""  # public URL of /websub/hub; default http://host:port/websub/hub
    #: True: anyone may publish (no credential) and use any topic. False: topics must be registered
    #: through the API, and HTTP publishes need an admin API key or a publisher token
    websub_open: bool = False
    websub_publisher_tokens: dict[str, str] = Field(default_factory=dict)  # name → token
    websub_lease_default: int = 864_000  # 10 days
    websub_lease_min: int = 300
    websub_lease_max: int = 2_592_000  # 30 days
    websub_signature_algorithm: str = "sha256"  # sha1 | sha256 | sha384 | sha512
    websub_retry_initial: float = 5.0
    websub_retry_factor: float = 2.0
    websub_retry_max_interval: float = 600.0
    websub_retry_max_attempts: int = 10
    websub_retry_deadline: float = 21_600.0  # 6 hours from the first attempt
    websub_delivery_timeout: float = 10.0
    websub_verify_timeout: float = 10.0
    websub_concurrency: int = 256  # HTTP requests in flight per hub server
    websub_delivery_window: int = Field(default=4, ge=1)  # per subscription, see websub.md
    websub_allowed_schemes: NameList = Field(default_factory=lambda: ["http", "https"])
    #: the hub connects to global unicast addresses only; these networks are allowed besides
    #: (e.g. ["127.0.0.0/8"] for tests, an intranet's range)
    websub_allow_networks: NameList = Field(default_factory=list)
    websub_content_max_bytes: int = 1_000_000
    websub_subscribe_per_minute: int = 60  # (un)subscribe requests per client address; 0: off
    websub_publish_per_minute: int = 600  # publishes per credential (or address); 0: off
    # notification storage (Redis store): per topic, oldest dropped beyond either cap; in all,
    # publishes refused with 503 beyond it
    websub_stream_max_len: int = 10_000  # notifications kept per topic
    websub_topic_max_bytes: int = 16_000_000
    websub_storage_max_bytes: int = 256_000_000
    websub_store: str = "redis"  # redis | kafka
    websub_kafka: dict[str, Any] = Field(default_factory=dict)  # KafkaSettings fields
    #: seconds a server's claim on a subscription lasts (renewed every third of it): a dead
    #: server's subscriptions move to the others within about this, like a dead worker's tasks
    websub_owner_ttl: float = 4.0
    #: seconds a server keeps "this topic has an active subscription" between publishes (a
    #: publish then asks SQL nothing); a "no" is never kept (`fnhub.websub.publish_cache`); 0: off
    websub_subscribed_cache_seconds: float = Field(default=2.0, ge=0)

    # cron beat (fnhub.cron; docs/cron.md)
    cron_timezone: str = "UTC"  # jobs without their own timezone
    cron_lease_seconds: float = 3.0  # leader lease; a dead leader is replaced within about this
    cron_misfire_grace_seconds: float = 10.0  # later than this a tick is missed (misfire policy)
    cron_record_limit: int = 500  # task records kept per cron job unless the job sets one

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments > environment > the project's fnhub.yaml > defaults; the project
        is the `project_dir` argument (no argument: no fnhub.yaml is read)."""
        _refuse_unknown_env(settings_cls.model_fields)
        project_dir = getattr(init_settings, "init_kwargs", {}).get("project_dir")
        return init_settings, env_settings, ProjectFileSource(settings_cls, project_dir)

    @property
    def project_file(self) -> Path:
        return self.project_dir / PROJECT_FILE

    @property
    def in_project(self) -> bool:
        """Whether `project_dir` is a project: it has `fnhub.yaml` or a `scripts/` folder."""
        return self.project_file.is_file() or self.scripts_dir.is_dir()

    @property
    def scripts_dir(self) -> Path:
        return self.project_dir / "scripts"

    def resolved_db_url(self) -> str:
        """The SQLAlchemy URL, defaulting to SQLite under the data folder."""
        if self.db_url:
            return self.db_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'fnhub.db').resolve()}"


def _project_dir(project_dir: Path | str | None) -> Path:
    """The project: the one named, else `FNHUB_PROJECT_DIR`, else the current folder."""
    if project_dir is not None:
        return Path(project_dir)
    return Path(os.environ.get(env_name("project_dir"), "."))


def load_settings(project_dir: Path | str | None = None, **overrides: Any) -> Settings:
    """A project's settings: `overrides` (flags) > environment > its fnhub.yaml > defaults. A
    relative `data_dir` is taken from the project folder."""
    base = _project_dir(project_dir)
    try:
        settings = Settings(**overrides, project_dir=base)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, base, overrides)) from exc
    except SettingsError:
        raise
    except pydantic_settings.SettingsError as exc:  # a value that is not JSON where JSON must be
        where = str(exc).replace('from source "EnvSettingsSource"', "in the environment")
        raise SettingsError(f"{where}: {exc.__cause__}" if exc.__cause__ else where) from exc
    if not settings.data_dir.is_absolute():
        settings.data_dir = (base / settings.data_dir).resolve()
    return settings


def setting_origins(
    project_dir: Path | str | None, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Where each setting's value comes from: `flag`, `env FNHUB_<NAME>`, `fnhub.yaml` or
    `default` (the same layering `load_settings` applies, read once more)."""
    base = _project_dir(project_dir)
    from_env = EnvSettingsSource(Settings)()
    from_file = ProjectFileSource(Settings, base)()
    origins: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in (overrides or {}) or (name == "project_dir" and project_dir is not None):
            origins[name] = "flag"
        elif name in from_env:
            origins[name] = f"env {env_name(name)}"
        elif name in from_file:
            origins[name] = PROJECT_FILE
        else:
            origins[name] = "default"
    return origins


def _explain(exc: ValidationError, project_dir: Path, overrides: Mapping[str, Any]) -> str:
    """A validation error as one line per setting, each saying where its value came from."""
    try:
        origins = setting_origins(project_dir, overrides)
    except ValueError:
        origins = {}
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting '{name}'{nearest(name, Settings.model_fields)}")
            continue
        where = origins.get(name, "")
        where = f" (from {where})" if where else ""
        got = "" if _may_be_secret(name) else f" (got {error['input']!r})"
        lines.append(f"setting {name}{where}: {error['msg']}{got}")
    return "; ".join(lines)


def _may_be_secret(name: str) -> bool:
    """Settings whose rejected value an error message must not repeat."""
    return any(word in name for word in ("secret", "token", "password", "url", "kafka"))
