"""`python -m fnhub.healthcheck [ROLE [OPTIONS]]`: exit 0 when this machine's fnhub role is
healthy, 1 when not: the container image's HEALTHCHECK (docs/deploy.md), one for every role.

The role is the first of `server`, `serve`, `worker`, `beat` among the arguments (given as the
role was started: `server --port 9000`), else on PID 1's command line (the container's
`tini -- fnhub <role> ...`), so one image needs one HEALTHCHECK.

- `server`, `serve`: GET `/healthz` on this machine's port answers 200 (the port and host from
  the same command line's `--port` / `--host`, else the settings).
- `worker`: a worker of this host name heartbeats in Redis (`worker.presence`), so the
  supervisor runs and reaches Redis; a worker that lost Redis is unhealthy until it is back.
- `beat`: a `fnhub beat` of this host name heartbeats in Redis and is not stale
  (`fnhub.presence`: it runs and reaches Redis, leading or standing by), and some beat holds
  the leader lease (cron fires).

Settings come from the environment as for the role itself (`FNHUB_REDIS_URL`, `FNHUB_PORT`...).
Each check is bounded by `TIMEOUT` seconds; the reason is printed on failure.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROLES = ("server", "serve", "worker", "beat")
TIMEOUT = 5.0  # under the image's HEALTHCHECK --timeout (10 s), start-up included
#: addresses a server may listen on that are reached through loopback from the same machine
ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


def role_of(argv: Sequence[str]) -> str | None:
    """The first role name among a command line's words."""
    return next((word for word in argv if word in ROLES), None)


def option_of(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` on a command line, else None."""
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def pid1_argv() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def check_http(argv: Sequence[str]) -> str | None:
    """None when `/healthz` answers 200, else the reason."""
    from fnhub.config import load_settings

    settings = load_settings()
    host = option_of(argv, "--host") or settings.host
    port = int(option_of(argv, "--port") or settings.port)
    if host in ANY_ADDRESS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
            return None if reply.status == 200 else f"{url} answered {reply.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def check_worker() -> str | None:
    """None when a live worker of this host name heartbeats, else the reason."""
    from fnhub.config import load_settings
    from fnhub.keys import Keys
    from fnhub.redis_client import sync_redis
    from fnhub.worker.presence import live_workers

    settings = load_settings()
    client = sync_redis(settings, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    host = socket.gethostname()
    try:
        workers = live_workers(client, Keys(settings.key_prefix))
    except Exception as exc:
        return f"Redis: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    if any(w.get("host") == host for w in workers.values()):
        return None
    return f"no live worker of host {host} in Redis ({len(workers)} live elsewhere)"


def check_beat() -> str | None:
    """None when a beat of this host name heartbeats and some beat leads, else the reason."""
    import time

    from fnhub.config import load_settings
    from fnhub.keys import Keys
    from fnhub.presence import members
    from fnhub.redis_client import sync_redis
    from fnhub.redis_replies import as_hash

    settings = load_settings()
    keys = Keys(settings.key_prefix)
    client = sync_redis(settings, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.beats)
        pipe.get(keys.beat_leader)
        raw, leader = pipe.execute()
    except Exception as exc:
        return f"Redis: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    host = socket.gethostname()
    beats = members(as_hash(raw), settings.presence_ttl_seconds, time.time())
    # a server's own beat (`server` set) does not stand for a `fnhub beat` of this host
    mine = [b for b in beats if b.entry.get("host") == host and not b.entry.get("server")]
    if not any(not b.stale for b in mine):
        stale = f", {len(mine)} stale" if mine else ""
        return f"no live beat of host {host} in Redis{stale} ({len(beats) - len(mine)} elsewhere)"
    return None if leader else "no beat holds the leader lease"


def check(role: str, argv: Sequence[str]) -> str | None:
    """None when `role` is healthy here, else the reason."""
    if role in ("server", "serve"):
        return check_http(argv)
    if role == "worker":
        return check_worker()
    return check_beat()


def main(args: Sequence[str]) -> int:
    argv = list(args) or pid1_argv()
    role = role_of(argv)
    if role is None:
        print(f"no role (one of {', '.join(ROLES)}) in {argv}", file=sys.stderr)
        return 1
    try:
        reason = check(role, argv)
    except Exception as exc:  # a bad setting, say: unhealthy, with the reason
        reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        print(f"fnhub {role} unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
