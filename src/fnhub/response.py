"""`fnhub.Response`: lets a function shape its HTTP answer (status, headers, type, download)."""

from __future__ import annotations

import base64
from typing import Any

import orjson

RESPONSE_MARKER = "$fnhub_response"


class Response:
    def __init__(
        self,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        if not 100 <= status <= 599:
            raise ValueError(f"HTTP status must be 100..599, got {status}")
        self.body = body
        self.status = status
        self.headers = headers or {}
        self.content_type = content_type
        self.filename = filename

    def to_json(self) -> dict[str, Any]:
        """A JSON form that survives the queue; bytes travel as base64."""
        if isinstance(self.body, bytes):
            body, encoding = base64.b64encode(self.body).decode(), "base64"
            content_type = self.content_type or "application/octet-stream"
        elif isinstance(self.body, str):
            body, encoding = self.body, "text"
            content_type = self.content_type or "text/plain; charset=utf-8"
        else:
            body, encoding = orjson.loads(orjson.dumps(self.body)), "json"
            content_type = self.content_type or "application/json"
        return {
            RESPONSE_MARKER: {
                "status": self.status,
                "headers": self.headers,
                "content_type": content_type,
                "filename": self.filename,
                "encoding": encoding,
                "body": body,
            }
        }
