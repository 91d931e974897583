"""A synchronous publisher for scripts made from a broker's async one, run on a private
event-loop thread: worker processes get the same client and behaviour as the server, and each
publish returns once the broker confirmed it (or raises ConnectorError)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fnhub.connectors.base import AsyncPublisher, ConnectorError


class ThreadedPublisher:
    def __init__(
        self,
        broker: str,
        open_async: Callable[[], Awaitable[AsyncPublisher]],
        *,
        open_timeout: float,
        publish_timeout: float,
    ) -> None:
        self.broker = broker
        self.publish_timeout = publish_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"{broker}-publisher", daemon=True
        )
        self._thread.start()
        try:
            self._inner: AsyncPublisher = self._call(_awaited(open_async()), open_timeout + 5)
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise ConnectorError(f"{self.broker}: no answer within {timeout}s") from None

    def publish(self, topic: str, message: Any, **options: Any) -> None:
        timeout = float(options.get("timeout", self.publish_timeout))
        self._call(self._inner.publish(topic, message, **options), timeout + 5)

    def close(self) -> None:
        try:
            self._call(self._inner.close(), 15)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value
