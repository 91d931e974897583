"""Turning what a publisher hands over (bytes, text, JSON-able values) into body + content type."""

from __future__ import annotations

from typing import Any

import orjson


class ContentError(ValueError):
    """Content the hub cannot store (too large, unserialisable)."""


def encode(content: Any, content_type: str | None, max_bytes: int) -> tuple[bytes, str]:
    """bytes pass through, str is UTF-8, anything else is JSON; the type defaults to match."""
    if isinstance(content, bytes | bytearray | memoryview):
        body, default = bytes(content), "application/octet-stream"
    elif isinstance(content, str):
        body, default = content.encode(), "text/plain; charset=utf-8"
    else:
        try:
            body = orjson.dumps(content)
        except TypeError as exc:
            raise ContentError(f"content is not JSON-serialisable: {exc}") from exc
        default = "application/json"
    if len(body) > max_bytes:
        raise ContentError(f"content is {len(body)} bytes, more than the limit of {max_bytes}")
    return body, content_type or default
