"""A subscription's message as a function's call, and its output as what a rule publishes:
what the server's runner (queued path) and a worker child (direct path) share."""

from __future__ import annotations

import base64
import binascii
import random
import time
from typing import Any

import orjson

from fnhub.connectors import Message
from fnhub.subscriptions.spec import SubscriptionSpec
from fnhub.tasks import TaskResult
from fnhub.worker.execute import BYTES_MARKER

#: a random byte → the same with a UUID's version (4) or variant (RFC 4122) bits set, for
#: `bytes.translate`: a batch's bytes at once instead of a generator step per id
_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))
_RFC_4122 = bytes(b & 0x3F | 0x80 for b in range(256))
#: where each of a UUID's 32 hex digits goes in its 36 characters (8-4-4-4-12, dashes between)
_DIGIT_AT = [*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)]


def new_invoke_ids(n: int) -> list[str]:
    """`n` version-4 UUID strings like Baetyl's invoke ids, from one draw of the PRNG: a
    subscription makes them a batch at a time, and `uuid4()` reads os.urandom (a system call)
    for each, at several times the cost. The text of all of them is laid out at once (each
    digit position copied for the whole batch, a space after each id) and split: slicing and
    formatting five groups per id cost 3.6 times as much."""
    raw = bytearray(random.randbytes(16 * n))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122)
    digits = binascii.hexlify(raw)
    text = bytearray(b"-" * (37 * n))
    for i, at in enumerate(_DIGIT_AT):
        text[at::37] = digits[i::32]
    text[36::37] = b" " * n
    return text.decode().split()


def kwargs_size_bound(convention: str, msgs: Message | list[Message]) -> int | None:
    """An upper bound on the msgpack size of `{"topic": ..., "message": ...}` (two short keys,
    two headers of at most 5 bytes, the text as many bytes as the payload); None for other
    conventions: Baetyl's parsed event may encode larger than it came. Given a batch, one
    bound that holds for each of its messages (a direct child checks a batch at once)."""
    if convention != "kwargs":
        return None
    if isinstance(msgs, Message):
        return len(msgs.payload) + 4 * len(msgs.topic) + 32
    return max([len(m.payload) for m in msgs]) + 4 * max([len(m.topic) for m in msgs]) + 32


def message_text(payload: bytes) -> str | bytes:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return payload


def baetyl_event(payload: bytes) -> Any:
    """Parsed JSON, `{}` for an empty payload, bytes when it is not JSON (Baetyl's rules)."""
    if not payload.strip():
        return {}
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload


def output_bytes(value: Any) -> bytes | None:
    """How a function's return value is published: see docs/rules.md."""
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {BYTES_MARKER}:
        return base64.b64decode(value[BYTES_MARKER])
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


def message_kwargs(
    convention: str, msg: Message, invoke_id: str, function: str | None
) -> dict[str, Any]:
    """The function's keyword arguments for `msg`: `topic` and `message`, or Baetyl's `event`
    and `context` (docs/subscriptions.md, "Writing the handler")."""
    if convention == "event_context":
        return {
            "event": baetyl_event(msg.payload),
            "context": {
                "messageQOS": msg.qos,
                "messageTopic": msg.topic,
                "messageTimestamp": int(msg.timestamp or time.time()),
                "functionName": function,
                "functionInvokeID": invoke_id,
                "invokeid": invoke_id,
            },
        }
    return {"topic": msg.topic, "message": message_text(msg.payload)}


def error_message(spec: SubscriptionSpec, msg: Message, result: TaskResult) -> bytes:
    """What a rule publishes for a message whose function failed (docs/rules.md)."""
    return orjson.dumps(
        {
            "error": {"type": result.error_type, "message": result.error_message},
            "status": result.status,
            "function": spec.function,
            "invoke_id": (result.meta or {}).get("invoke_id"),
            "task_id": result.id,
            "subscription": spec.name,
            "topic": msg.topic,
            "input": base64.b64encode(msg.payload).decode(),
        }
    )
