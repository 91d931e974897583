"""Per-process (sync) and per-event-loop (async) pools of publishers, one per connector name.

Opening a broker connection per publish would cost a TCP (and TLS, and SASL) handshake each
time; the pool keeps one open publisher per connector and reopens it when its settings change.
After fork the child starts with an empty pool: the parent's sockets and threads are not its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import weakref
from typing import Any

from fnhub.connectors.base import (
    AsyncPublisher,
    Publisher,
    parse_model,
    settings_hash,
)
from fnhub.connectors.types import get_type

log = logging.getLogger("fnhub.connectors.pool")

_lock = threading.Lock()
_sync: dict[str, tuple[str, Publisher]] = {}
_async: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[str, AsyncPublisher]]
] = weakref.WeakKeyDictionary()
_async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _sync.clear()
    _async.clear()
    _async_locks.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def get_publisher(name: str, connector_type: str, settings: dict[str, Any]) -> Publisher:
    """The open publisher of connector `name`, opened on first use or when settings changed."""
    digest = settings_hash(connector_type, settings)
    with _lock:
        entry = _sync.get(name)
        if entry is not None and entry[0] == digest:
            return entry[1]
        if entry is not None:
            _sync.pop(name)
            _close_quietly(entry[1])
        ct = get_type(connector_type)
        model = parse_model(ct.settings_model, settings, f"{connector_type} settings")
        publisher = ct.create_publisher(model)
        _sync[name] = (digest, publisher)
        return publisher


async def get_async_publisher(
    name: str, connector_type: str, settings: dict[str, Any]
) -> AsyncPublisher:
    """Same as `get_publisher`, for the running event loop."""
    loop = asyncio.get_running_loop()
    digest = settings_hash(connector_type, settings)
    pool = _async.setdefault(loop, {})
    entry = pool.get(name)
    if entry is not None and entry[0] == digest:
        return entry[1]
    lock = _async_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        entry = pool.get(name)
        if entry is not None and entry[0] == digest:
            return entry[1]
        if entry is not None:
            pool.pop(name)
            with contextlib.suppress(Exception):
                await entry[1].close()
        ct = get_type(connector_type)
        model = parse_model(ct.settings_model, settings, f"{connector_type} settings")
        publisher = await ct.create_async_publisher(model)
        pool[name] = (digest, publisher)
        return publisher


def close_publisher(name: str) -> None:
    """Close the pooled sync publisher of `name` (connector deleted or known broken)."""
    with _lock:
        entry = _sync.pop(name, None)
    if entry is not None:
        _close_quietly(entry[1])


def close_publishers() -> None:
    with _lock:
        entries = list(_sync.values())
        _sync.clear()
    for _digest, publisher in entries:
        _close_quietly(publisher)


async def close_async_publishers(name: str | None = None) -> None:
    """Close this loop's pooled async publishers (all, or only `name`)."""
    pool = _async.get(asyncio.get_running_loop(), {})
    names = [name] if name is not None else list(pool)
    for n in names:
        entry = pool.pop(n, None)
        if entry is not None:
            try:
                await entry[1].close()
            except Exception:
                log.exception("closing publisher %s failed", n)


def _close_quietly(publisher: Publisher) -> None:
    try:
        publisher.close()
    except Exception:
        log.exception("closing publisher failed")
