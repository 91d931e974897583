"""Pages of the named listings (connectors, subscriptions, endpoints, cron jobs, API keys,
users): the task list's shape (`items`, `total`, `offset`, `limit`, `next_cursor`), ordered by
a unique key and resumed after the last row of the page before (a keyset, like the task
records), with a filter on the name.

No listing reads a whole table: a page is `limit + 1` rows from the key's index; the count
(first page only, unless asked) is one `COUNT(*)`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from fnhub.server.errors import ApiError
from fnhub.store.db import Database

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Item = TypeVar("Item")


class ListPage(BaseModel, Generic[Item]):
    """One page of a listing, in the task list's shape."""

    items: list[Item]
    total: int | None = Field(
        description="rows matching the filter; counted on the first page (no cursor) unless "
        "count=false, null otherwise"
    )
    offset: int
    limit: int
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


@dataclass(frozen=True)
class PageRequest:
    """What a listing call asked for (see `page_request`)."""

    name: str | None
    cursor: str | None
    offset: int
    limit: int
    count: bool | None


def page_request(
    name: str | None = Query(None, max_length=200, description="names holding this text, any case"),
    cursor: str | None = Query(
        None, max_length=400, description="`next_cursor` of the page before"
    ),
    offset: int = Query(0, ge=0, le=1_000_000, description="rows to skip (prefer `cursor`)"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    count: bool | None = Query(None, description="count the matches (default: first page only)"),
) -> PageRequest:
    """The paging query parameters every named listing takes (a FastAPI dependency)."""
    return PageRequest(name or None, cursor, offset, limit, count)


def _encode(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _decode(cursor: str, width: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", f"malformed cursor {cursor[:40]!r}") from exc
    if not isinstance(values, list) or len(values) != width:
        raise ApiError(422, "invalid_cursor", f"malformed cursor {cursor[:40]!r}")
    if not all(isinstance(v, str) for v in values):  # every listing's key is names and ids
        raise ApiError(422, "invalid_cursor", f"malformed cursor {cursor[:40]!r}")
    return values


def fetch_page(
    db: Database,
    order: Sequence[InstrumentedAttribute[Any]],
    page: PageRequest,
    *,
    name: InstrumentedAttribute[Any] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[Any], dict[str, Any]]:
    """The page's ORM rows in `order` (columns of one model that are unique together, name
    first) and the page's other fields. `name` is the column the filter searches (default:
    the first of `order`)."""
    entity = order[0].class_
    conditions = list(where)
    if page.name:
        conditions.append((name or order[0]).icontains(page.name, autoescape=True))
    keyed = list(conditions)
    if page.cursor:
        after = _decode(page.cursor, len(order))
        keyed.append(tuple_(*order) > tuple_(*after) if len(order) > 1 else order[0] > after[0])
    query = select(entity).where(*keyed).order_by(*order).offset(page.offset).limit(page.limit + 1)
    counted = page.count if page.count is not None else page.cursor is None
    with db.session() as session:
        rows = list(session.execute(query).scalars())
        total = None
        if counted:
            counting = select(func.count()).select_from(entity).where(*conditions)
            total = int(session.execute(counting).scalar() or 0)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = _encode([getattr(rows[-1], c.key) for c in order]) if more else None
    meta = {"total": total, "offset": page.offset, "limit": page.limit, "next_cursor": next_cursor}
    return rows, meta
