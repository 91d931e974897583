"""The window hands messages to the handler in batches and settles each message exactly once:
by the handler, when the handler returns (handled) or raises (failed), or at a stop that cancels
it (left unacked). Sources ack on `done(msg, True)` only, so these rules are the no-loss rules."""

from __future__ import annotations

import asyncio

import pytest

from fnhub.connectors import Message, Settle, SourceStatus, each
from fnhub.connectors.base import Window


def _window(size: int, handler) -> tuple[Window, list[tuple[bytes, bool]]]:  # type: ignore[no-untyped-def]
    window = Window(size, SourceStatus())
    window.handler = handler
    done: list[tuple[bytes, bool]] = []
    return window, done


def _spawn(window: Window, done: list[tuple[bytes, bool]], payloads: list[bytes]) -> None:
    for p in payloads:
        window.spawn(Message(topic="t", payload=p), lambda m, ok: done.append((m.payload, ok)))


async def test_one_turn_is_one_batch_settled_message_by_message() -> None:
    batches: list[list[bytes]] = []
    gate = asyncio.Event()

    async def handler(msgs: list[Message], settle: Settle) -> None:
        batches.append([m.payload for m in msgs])
        settle(1, True)  # settled early: acked before the others
        await gate.wait()
        settle(0, True)
        settle(0, True)  # a second settle of the same message changes nothing

    window, done = _window(10, handler)
    _spawn(window, done, [b"a", b"b", b"c"])
    assert window.free == 7  # room is taken at spawn, before the handler starts
    await asyncio.sleep(0.01)
    assert batches == [[b"a", b"b", b"c"]]
    assert done == [(b"b", True)]
    assert window.free == 8
    gate.set()
    await asyncio.sleep(0.01)
    # c was never settled by the handler: it counts as handled when the handler returns
    assert done == [(b"b", True), (b"a", True), (b"c", True)]
    assert window.free == 10 and window.status.in_flight == 0
    assert window.status.received == 3 and window.status.failed == 0


async def test_a_raising_handler_leaves_its_unsettled_messages_unacked() -> None:
    async def handler(msgs: list[Message], settle: Settle) -> None:
        settle(0, True)
        raise RuntimeError("boom")

    window, done = _window(10, handler)
    _spawn(window, done, [b"a", b"b", b"c"])
    await asyncio.sleep(0.01)
    assert done == [(b"a", True), (b"b", False), (b"c", False)]
    assert window.status.failed == 2
    assert window.free == 10


async def test_a_handler_raising_after_settling_everything_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(msgs: list[Message], settle: Settle) -> None:
        for i in range(len(msgs)):
            settle(i, True)
        raise RuntimeError("late boom")

    window, done = _window(10, handler)
    _spawn(window, done, [b"a", b"b"])
    await asyncio.sleep(0.01)
    assert done == [(b"a", True), (b"b", True)]  # each once, as settled
    assert window.free == 10 and window.status.failed == 0
    assert "late boom" in caplog.text


async def test_a_handler_that_cannot_start_fails_its_batch_instead_of_holding_it() -> None:
    async def one_message_handler(msg: Message) -> None:  # not wrapped in each()
        raise AssertionError("never called")

    window, done = _window(10, one_message_handler)
    _spawn(window, done, [b"a", b"b"])
    await asyncio.sleep(0.01)
    assert done == [(b"a", False), (b"b", False)]
    assert window.free == 10


async def test_drain_cancels_what_did_not_finish_and_leaves_it_unacked() -> None:
    async def handler(msgs: list[Message], settle: Settle) -> None:
        settle(0, True)
        await asyncio.Event().wait()

    window, done = _window(10, handler)
    _spawn(window, done, [b"a", b"b"])
    await asyncio.sleep(0.01)
    await window.drain(0.05)
    assert done == [(b"a", True), (b"b", False)]
    assert window.status.failed == 0  # cancelled at stop is not a handler failure
    assert window.free == 10


async def test_each_runs_one_message_handlers_side_by_side() -> None:
    running = 0
    most = 0

    async def handler(msg: Message) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        if msg.payload == b"bad":
            raise ValueError("bad message")

    window, done = _window(10, each(handler))
    _spawn(window, done, [b"a", b"bad", b"c"])
    await asyncio.sleep(0.05)
    assert sorted(done) == [(b"a", True), (b"bad", False), (b"c", True)]
    assert most == 3
    assert window.status.failed == 1


async def test_wait_room_counts_messages_not_batches() -> None:
    gate = asyncio.Event()

    async def handler(msgs: list[Message], settle: Settle) -> None:
        await gate.wait()

    window, done = _window(3, handler)
    _spawn(window, done, [b"a", b"b", b"c"])
    assert not await window.wait_room(timeout=0.05)
    gate.set()
    assert await window.wait_room(timeout=1, n=3)


async def test_a_source_waiting_for_a_refill_waits_until_that_much_is_free() -> None:
    """A busy source reads again once a quarter window is free, not at the first free slot."""
    settles: list[Settle] = []

    async def handler(msgs: list[Message], settle: Settle) -> None:
        settles.append(settle)
        await asyncio.sleep(3600)

    window, done = _window(8, handler)
    assert window.refill == 2
    _spawn(window, done, [bytes([i]) for i in range(8)])
    await asyncio.sleep(0)  # the batch reaches the handler
    waiter = asyncio.ensure_future(window.wait_room(timeout=5, n=window.refill))
    await asyncio.sleep(0.01)
    settles[0](0, True)
    await asyncio.sleep(0.01)
    assert not waiter.done()  # one free: not enough
    settles[0](1, True)
    assert await asyncio.wait_for(waiter, 1) is True
    assert window.free == 2
    settles[0](2, True)
    assert await asyncio.wait_for(window.wait_room(), 1)  # one slot, after a wait for two
    await window.drain(0)


def test_a_window_holds_at_least_one_message() -> None:
    with pytest.raises(ValueError, match="window"):
        Window(0, SourceStatus())


async def test_spawn_many_joins_the_turn_and_keeps_the_books_of_single_spawns() -> None:
    batches: list[list[bytes]] = []
    gate = asyncio.Event()

    async def handler(msgs: list[Message], settle: Settle) -> None:
        batches.append([m.payload for m in msgs])
        await gate.wait()
        for i in range(len(msgs)):
            settle(i, True)

    window, done = _window(4, handler)

    def ack(m: Message, ok: bool) -> None:
        done.append((m.payload, ok))

    _spawn(window, done, [b"a"])
    window.spawn_many([(Message(topic="t", payload=p), ack) for p in (b"b", b"c", b"d")])
    window.spawn_many([])  # an empty read changes nothing
    assert (window.free, window.status.in_flight, window.status.received) == (0, 4, 4)
    assert window.status.max_in_flight == 4
    assert not await window.wait_room(timeout=0.05)  # full: the reader waits
    assert batches == [[b"a", b"b", b"c", b"d"]]  # one turn, one batch
    gate.set()
    assert await window.wait_room(timeout=1, n=4)
    assert done == [(b"a", True), (b"b", True), (b"c", True), (b"d", True)]
    assert window.status.in_flight == 0
