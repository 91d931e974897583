"""Kwargs from an endpoint request: query string, then the body (JSON, form, multipart files,
plain text or binary), then the endpoint's fixed kwargs with their caller placeholders. A JSON
object sent with no Content-Type, or with curl -d's form type, counts as JSON.

Files and binary bodies cross the queue as JSON-safe dicts
`{"filename", "content_type", "size", "base64"}` (the task record is JSON).
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from fnhub.server.endpoint_spec import CALLER
from fnhub.server.errors import ApiError


def _file(data: bytes, content_type: str, filename: str | None = None) -> dict[str, Any]:
    return {
        "filename": filename,
        "content_type": content_type,
        "size": len(data),
        "base64": base64.b64encode(data).decode(),
    }


def _json_body(body: bytes) -> Any:
    """The parsed body. msgspec keeps integers past 64 bits exact (orjson would make them
    floats) for the call's checks to refuse; orjson takes nesting deeper than msgspec's
    recursion allows (for the checks to refuse too) and words a syntax error better."""
    try:
        return _decode_json(body)
    except (RecursionError, msgspec.DecodeError, msgspec.ValidationError):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"malformed JSON body: {exc}") from None


def _json_object(body: bytes) -> bool:
    """Whether a body sent without a JSON Content-Type is a JSON object. An encoded form never
    starts with `{` (it is `%7B` there), so no form is taken for one."""
    if not body.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


def _add(kwargs: dict[str, Any], key: str, value: Any) -> None:
    if key in kwargs:
        previous = kwargs[key]
        kwargs[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
    else:
        kwargs[key] = value


async def from_request(
    request: Request, body: bytes, credential: str | None = None
) -> dict[str, Any]:
    """The caller's kwargs; `credential` names a query parameter that carries the endpoint's
    token: auth consumed it, so it is no kwarg (and never reaches the function or a record)."""
    kwargs: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key != credential:
            _add(kwargs, key, value)
    if not body:
        return kwargs
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media in ("", "application/x-www-form-urlencoded") and _json_object(body):
        media = "application/json"  # JSON sent with no type, or curl -d's form type
    elif not media:
        content_type = media = "application/octet-stream"
    if media == "application/json" or media.endswith("+json"):
        data = _json_body(body)
        if not isinstance(data, dict):
            raise ApiError(422, "invalid_kwargs", "a JSON body must be an object of kwargs")
        kwargs.update(data)
    elif media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception as exc:  # multipart parser errors have several types
            raise ApiError(400, "malformed_form", f"malformed form body: {exc}") from None
        fields: dict[str, Any] = {}
        for key, item in form.multi_items():
            if isinstance(item, UploadFile):
                data = await item.read()
                _add(fields, key, _file(data, item.content_type or "", item.filename))
            else:
                _add(fields, key, item)
        await form.close()
        kwargs.update(fields)
    elif media.startswith("text/"):
        try:
            kwargs["body"] = body.decode()
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", "a text body must be UTF-8") from None
    else:
        kwargs["body"] = _file(body, content_type)
    return kwargs


_decode_json = msgspec.json.Decoder().decode


def merge(fixed: dict[str, Any] | None, given: dict[str, Any]) -> dict[str, Any]:
    """The call's kwargs: fixed values win; the caller fills only placeholders (422 otherwise)."""
    if fixed is None:
        return given
    fillable = {k for k, v in fixed.items() if v == CALLER}
    refused = sorted(k for k in given if k not in fillable)
    if refused:
        raise ApiError(
            422,
            "invalid_kwargs",
            f"this endpoint does not take argument(s): {', '.join(refused)}",
        )
    kwargs = {k: v for k, v in fixed.items() if v != CALLER}
    kwargs.update({k: v for k, v in given.items() if k in fillable})
    return kwargs
