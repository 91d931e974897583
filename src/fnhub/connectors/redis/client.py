"""Connecting to Redis: what the source and the publishers share."""

from __future__ import annotations

import logging
from typing import Any

import redis as redis_sync
import redis.asyncio as aredis
import redis.asyncio.retry
import redis.retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from fnhub.connectors.redis.settings import (
    RedisSettings,
)
from fnhub.connectors.settings import tls_options

log = logging.getLogger("fnhub.connectors.redis")

GLOB_CHARS = set("*?[")


def client_kwargs(s: RedisSettings, *, blocking: bool) -> dict[str, Any]:
    """redis-py keyword arguments; blocking readers get no socket timeout (they wait on BLOCK)."""
    kw: dict[str, Any] = {
        "socket_connect_timeout": min(s.socket_timeout, 5.0),
        "socket_timeout": None if blocking else s.socket_timeout,
        "socket_keepalive": True,
    }
    if s.username is not None:
        kw["username"] = s.username
    if s.password is not None:
        kw["password"] = s.password
    tls = tls_options(s.tls)
    if tls is not None and not (s.url and s.url.startswith("unix:")):
        if not s.url:
            kw["ssl"] = True
        kw["ssl_ca_certs"] = tls.ca_certs
        kw["ssl_certfile"] = tls.certfile
        kw["ssl_keyfile"] = tls.keyfile
        if tls.insecure:
            kw["ssl_cert_reqs"] = "none"
            kw["ssl_check_hostname"] = False
    if not s.url:
        kw.update(host=s.host, port=s.port, db=s.db)
    return kw


def async_client(s: RedisSettings, *, blocking: bool = False, retries: int = 0) -> aredis.Redis:
    """`retries` 0 for sources (they back off and report themselves) and connection tests."""
    kw = client_kwargs(s, blocking=blocking)
    kw["retry"] = redis.asyncio.retry.Retry(_backoff(retries), retries)
    if s.url:
        return aredis.Redis.from_url(s.url, **kw)
    return aredis.Redis(**kw)


def sync_client(s: RedisSettings, retries: int = 2) -> redis_sync.Redis:
    kw = client_kwargs(s, blocking=False)
    kw["retry"] = redis.retry.Retry(_backoff(retries), retries)
    if s.url:
        return redis_sync.Redis.from_url(s.url, **kw)
    return redis_sync.Redis(**kw)


def _backoff(retries: int) -> Any:
    return ExponentialWithJitterBackoff(base=0.05, cap=0.5) if retries else NoBackoff()


def where(s: RedisSettings) -> str:
    if s.url:
        return s.url.split("@")[-1]  # no credentials in messages
    return f"{s.host}:{s.port}"


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
