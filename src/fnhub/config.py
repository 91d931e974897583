"""Settings: one object, read from `FNHUB_*` environment variables and the project's `fnhub.yaml`.

Every process role (server, worker, beat, CLI) builds the same `Settings`, so a value set once in
the environment holds everywhere. Empty `redis_url` / `db_url` mean "embedded defaults": a private
Redis-protocol server and SQLite, both under `data_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_QUEUES = ("sync", "async", "cron", "sub", "debug", "system")


class Settings(BaseSettings):
    """Process-wide settings. Field names map to `FNHUB_<NAME>` environment variables."""

    model_config = SettingsConfigDict(env_prefix="FNHUB_", extra="ignore")

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

    # worker
    queues: list[str] = Field(default_factory=lambda: list(DEFAULT_QUEUES))
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
    reclaim_idle_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    heartbeat_seconds: float = 2.0

    # task records
    records_enabled: bool = True
    records_keep_per_origin: int = 1000
    records_max_age_days: float = 30.0

    # HTTP server
    host: str = "127.0.0.1"
    port: int = 8090
    body_max_bytes: int = 10_000_000
    access_log: bool = True  # one JSON line per request on the `fnhub.access` logger
    #: headers and kwargs whose values task records show as "[redacted]" (case-insensitive,
    #: `_` = `-`); an endpoint's own credential field is always added (docs/http.md)
    redact_names: list[str] = Field(
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
    websub_allowed_schemes: list[str] = Field(default_factory=lambda: ["http", "https"])
    #: the hub connects to global unicast addresses only; these networks are allowed besides
    #: (e.g. ["127.0.0.0/8"] for tests, an intranet's range)
    websub_allow_networks: list[str] = Field(default_factory=list)
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
    websub_owner_ttl: float = 10.0  # seconds a server's claim on a subscription lasts

    # cron beat (fnhub.cron; docs/cron.md)
    cron_timezone: str = "UTC"  # jobs without their own timezone
    cron_lease_seconds: float = 3.0  # leader lease; a dead leader is replaced within about this
    cron_misfire_grace_seconds: float = 10.0  # later than this a tick is missed (misfire policy)
    cron_record_limit: int = 500  # task records kept per cron job unless the job sets one

    @property
    def scripts_dir(self) -> Path:
        return self.project_dir / "scripts"

    def resolved_db_url(self) -> str:
        """The SQLAlchemy URL, defaulting to SQLite under the data folder."""
        if self.db_url:
            return self.db_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'fnhub.db').resolve()}"


def load_project_file(project_dir: Path) -> dict[str, Any]:
    """Read `fnhub.yaml` (empty dict when absent); errors name the file."""
    path = project_dir / "fnhub.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def load_settings(project_dir: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings from, in rising priority: `fnhub.yaml` `settings:`, environment, overrides."""
    base = Path(project_dir) if project_dir is not None else Path(".")
    file_settings = load_project_file(base).get("settings") or {}
    settings = Settings(**{**file_settings, **overrides, "project_dir": base})
    # environment wins over the file: BaseSettings gives init kwargs priority, so re-read env
    env_only = Settings(project_dir=base)
    for name in Settings.model_fields:
        if name in env_only.model_fields_set and name not in overrides:
            setattr(settings, name, getattr(env_only, name))
    if not settings.data_dir.is_absolute():
        settings.data_dir = (base / settings.data_dir).resolve()
    return settings
