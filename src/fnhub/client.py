"""Calling fnhub functions over HTTP, for callers that have no Redis access (a web app, another
service, a notebook): `fnhub.Client` and `fnhub.AsyncClient`, the same methods, awaitable.

    with fnhub.Client("http://fnhub.internal:8000", key) as client:
        total = client.call("billing.total", order=5)          # waits, returns the result
        task = client.submit("reports.monthly", month="2024-05")
        task.result(timeout=600)                                # the result, or raises

A failed call raises the `fnhub.errors` class of the API's error answer (`FunctionFailed` with
the function's error type and traceback, `FunctionTimeout`, `UnknownFunction`, ...). One client
holds one connection pool (httpx) and may be shared by threads (`Client`) or tasks
(`AsyncClient`). Retries happen only where they cannot run a function twice: connecting, and
503 `no_worker` / `queue_full`, which the server answers before queueing anything.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from typing import Any, Self
from urllib.parse import quote

import httpx

from fnhub import __version__, errors

#: the server's longest long-poll (`GET /tasks/{id}?wait=`)
LONG_POLL_SECONDS = 60.0
#: how much longer than the function's timeout the server waits for a sync call's result
SERVER_WAIT_MARGIN = 5.0
#: errors the server answers before queueing anything: trying again cannot run a task twice
RETRYABLE_CODES = frozenset({"no_worker", "queue_full"})
#: the longest a retry waits, whatever `Retry-After` says
MAX_RETRY_WAIT = 30.0
FINAL_STATUSES = frozenset({"success", "failure", "timeout", "expired", "dead", "skipped"})


@dataclasses.dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call settings (`client.options(...)`): kept apart from the function's kwargs, so a
    function may have parameters named `timeout` or `queue`."""

    timeout: float | None = None  # seconds the function may run (the server's limit applies)
    queue: str | None = None  # run on this queue instead of the function's
    delay: float | None = None  # submit only: run after this many seconds
    eta: float | None = None  # submit only: run at this epoch time (seconds)


class _Base:
    """What both clients share: the address, the key, the options, and reading answers."""

    def __init__(self, url: str, key: str, *, timeout: float, retries: int) -> None:
        if not isinstance(url, str) or not isinstance(key, str):
            raise TypeError(
                "Client(url, key) calls fnhub over HTTP with an API key; on the server's "
                "machine, fnhub.calling.queue_client.QueueClient(settings) calls through Redis"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._options = CallOptions()
        self._own_http = True
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": f"fnhub-client/{__version__}",
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def options(
        self,
        *,
        timeout: float | None = None,
        queue: str | None = None,
        delay: float | None = None,
        eta: float | None = None,
    ) -> Self:
        """A view of this client whose calls carry these options; it shares the connection
        pool (closing the view leaves the pool open)."""
        given: dict[str, Any] = {"timeout": timeout, "queue": queue, "delay": delay, "eta": eta}
        view = copy.copy(self)
        view._options = dataclasses.replace(
            self._options, **{k: v for k, v in given.items() if v is not None}
        )
        view._own_http = False
        return view

    # -- requests and answers ----------------------------------------------------------------
    def _call_request(self, ref: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        o = self._options
        if o.delay is not None or o.eta is not None:
            raise TypeError("delay and eta are options of submit(), not call()")
        body: dict[str, Any] = {"kwargs": kwargs}
        if o.timeout is not None:
            body["timeout"] = o.timeout
        if o.queue is not None:
            body["queue"] = o.queue
        return f"/api/v1/functions/{quote(ref, safe='')}/call", body

    def _call_timeout(self) -> httpx.Timeout:
        """A call's answer comes when the function ends, or `SERVER_WAIT_MARGIN` after its
        timeout (504): wait for that, not for the client's timeout."""
        run = self._options.timeout
        read = None if run is None else run + SERVER_WAIT_MARGIN + self.timeout
        return httpx.Timeout(self.timeout, read=read)

    def _submit_request(self, ref: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"kwargs": kwargs}
        for name, value in dataclasses.asdict(self._options).items():
            if value is not None:
                body[name] = value
        return f"/api/v1/functions/{quote(ref, safe='')}/tasks", body

    def _poll(self, task_id: str, wait: float) -> tuple[str, dict[str, Any], httpx.Timeout]:
        path = f"/api/v1/tasks/{quote(task_id, safe='')}"
        return path, {"wait": round(wait, 3)}, httpx.Timeout(self.timeout, read=wait + self.timeout)

    @staticmethod
    def _transport_error(method: str, path: str, exc: httpx.TransportError) -> errors.CallError:
        what = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "no answer"
        return errors.ConnectionFailed(f"{method} {path}: {what} ({type(exc).__name__}: {exc})")

    def _retry_wait(self, method: str, error: errors.ApiError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None to raise `error` now. Only refusals
        that queued nothing are retried (and reads, which change nothing)."""
        if attempt >= self.retries or error.status != 503:
            return None
        if error.code not in RETRYABLE_CODES and method != "GET":
            return None
        return min(error.retry_after if error.retry_after is not None else 1.0, MAX_RETRY_WAIT)


def _final(state: dict[str, Any]) -> Any:
    """A finished task's result, or its error raised."""
    if state["status"] == "success":
        return state.get("result")
    raise errors.from_task_state(state)


class TaskHandle:
    """A submitted task: `status()`, `state()` and `result(timeout)` read it from the server."""

    def __init__(self, client: Client, task_id: str) -> None:
        self.client = client
        self.id = task_id

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"

    def state(self) -> dict[str, Any]:
        """Everything the server says about the task now (`GET /tasks/{id}`)."""
        return self.client._task_state(self.id, 0.0)

    def status(self) -> str:
        """queued, running, retrying, or final: success, failure, timeout, expired, dead."""
        return str(self.state()["status"])

    def result(self, timeout: float | None = None) -> Any:
        """The task's result once it finished (long-polling the server); raises its error
        (`FunctionFailed`, ...) if it did not succeed, `ResultTimeout` if it is not finished
        after `timeout` seconds (None: wait as long as it takes). The task is not affected."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = LONG_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            state = self.client._task_state(self.id, max(0.0, min(left, LONG_POLL_SECONDS)))
            if state["status"] in FINAL_STATUSES:
                return _final(state)
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.ResultTimeout(
                    f"task is still {state['status']} after {timeout:g}s", task_id=self.id
                )


class Client(_Base):
    """A synchronous client; safe to share between threads (one connection pool)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        http: httpx.Client | None = None,
    ) -> None:
        """`url`: the server (`http://host:8000`); `key`: an API key (`fnhub keys create`,
        role developer or admin). `timeout`: seconds to wait for an answer (a call waits for
        its function besides). `retries`: tries again after failed connects and 503
        no_worker/queue_full (waiting `Retry-After`). `http`: your own httpx.Client (proxies,
        TLS), left open by `close()`."""
        super().__init__(url, key, timeout=timeout, retries=retries)
        self._own_http = http is None
        self._http = http or httpx.Client(
            timeout=timeout, transport=httpx.HTTPTransport(retries=retries)
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless it was given, or this is an `options()` view)."""
        if self._own_http:
            self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                answer = self._http.request(
                    method,
                    self.url + path,
                    json=json,
                    params=params,
                    headers=self._headers,
                    timeout=timeout or self.timeout,
                )
            except httpx.TransportError as exc:
                raise self._transport_error(method, path, exc) from exc
            if answer.is_success:
                return answer
            error = errors.from_answer(answer.status_code, answer.headers, answer.content)
            wait = self._retry_wait(method, error, attempt)
            if wait is None:
                raise error
            attempt += 1
            time.sleep(wait)

    def _task_state(self, task_id: str, wait: float) -> dict[str, Any]:
        path, params, timeout = self._poll(task_id, wait)
        state: dict[str, Any] = self._send("GET", path, params=params, timeout=timeout).json()
        return state

    def call(self, ref: str, /, **kwargs: Any) -> Any:
        """Run `script.function` with these kwargs and return its result; raises the
        `fnhub.errors` class of the failure (FunctionFailed, FunctionTimeout, ...)."""
        path, body = self._call_request(ref, kwargs)
        return self._send("POST", path, json=body, timeout=self._call_timeout()).json()["result"]

    def submit(self, ref: str, /, **kwargs: Any) -> TaskHandle:
        """Queue `script.function` with these kwargs; returns at once with a handle."""
        path, body = self._submit_request(ref, kwargs)
        return TaskHandle(self, self._send("POST", path, json=body).json()["id"])

    def task(self, task_id: str) -> TaskHandle:
        """A handle for a task id submitted earlier (by anyone)."""
        return TaskHandle(self, task_id)

    def functions(self) -> list[dict[str, Any]]:
        """The exported functions: ref, doc, params (name, kind, default, required), options."""
        listed: list[dict[str, Any]] = self._send("GET", "/api/v1/functions").json()
        return listed


class AsyncTaskHandle:
    """`TaskHandle` for `AsyncClient`: the same methods, awaitable."""

    def __init__(self, client: AsyncClient, task_id: str) -> None:
        self.client = client
        self.id = task_id

    def __repr__(self) -> str:
        return f"AsyncTaskHandle({self.id!r})"

    async def state(self) -> dict[str, Any]:
        return await self.client._task_state(self.id, 0.0)

    async def status(self) -> str:
        return str((await self.state())["status"])

    async def result(self, timeout: float | None = None) -> Any:
        """See `TaskHandle.result`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = LONG_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            state = await self.client._task_state(self.id, max(0.0, min(left, LONG_POLL_SECONDS)))
            if state["status"] in FINAL_STATUSES:
                return _final(state)
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.ResultTimeout(
                    f"task is still {state['status']} after {timeout:g}s", task_id=self.id
                )


class AsyncClient(_Base):
    """`Client` for asyncio code: the same methods, awaitable; share one per event loop."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, key, timeout=timeout, retries=retries)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=timeout, transport=httpx.AsyncHTTPTransport(retries=retries)
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    close = aclose

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                answer = await self._http.request(
                    method,
                    self.url + path,
                    json=json,
                    params=params,
                    headers=self._headers,
                    timeout=timeout or self.timeout,
                )
            except httpx.TransportError as exc:
                raise self._transport_error(method, path, exc) from exc
            if answer.is_success:
                return answer
            error = errors.from_answer(answer.status_code, answer.headers, answer.content)
            wait = self._retry_wait(method, error, attempt)
            if wait is None:
                raise error
            attempt += 1
            await asyncio.sleep(wait)

    async def _task_state(self, task_id: str, wait: float) -> dict[str, Any]:
        path, params, timeout = self._poll(task_id, wait)
        answer = await self._send("GET", path, params=params, timeout=timeout)
        state: dict[str, Any] = answer.json()
        return state

    async def call(self, ref: str, /, **kwargs: Any) -> Any:
        """See `Client.call`."""
        path, body = self._call_request(ref, kwargs)
        answer = await self._send("POST", path, json=body, timeout=self._call_timeout())
        return answer.json()["result"]

    async def submit(self, ref: str, /, **kwargs: Any) -> AsyncTaskHandle:
        """See `Client.submit`."""
        path, body = self._submit_request(ref, kwargs)
        return AsyncTaskHandle(self, (await self._send("POST", path, json=body)).json()["id"])

    def task(self, task_id: str) -> AsyncTaskHandle:
        return AsyncTaskHandle(self, task_id)

    async def functions(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await self._send("GET", "/api/v1/functions")).json()
        return listed
