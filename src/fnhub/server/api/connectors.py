"""Stored connectors (broker connections): CRUD and a "test connection" action.

Secret fields of `settings` (passwords, tokens, keys) are encrypted at rest and come back as
`********`; sending `********` back on update keeps the stored value. Validation and the
connection test are the connectors package's (`fnhub.connectors`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from fnhub.connectors import test_connection, validate_settings
from fnhub.connectors.forms import type_forms
from fnhub.json_values import PortableObject
from fnhub.secret_box import SecretBox, masked
from fnhub.server.access import actor
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import Deleted, Strict
from fnhub.server.state import state_of
from fnhub.store import connectors as stored
from fnhub.store.models import Connector

router = APIRouter(tags=["connectors"])
Name = Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$")


class ConnectorIn(Strict):
    type: str = Field(pattern=r"^[a-z0-9_]{1,32}$", description="redis, mqtt, kafka, ...")
    description: str = Field("", max_length=2000)
    settings: PortableObject = Field(default_factory=dict)


class ConnectorOut(BaseModel):
    name: str
    type: str
    description: str
    settings: dict[str, Any]
    provisioned: bool = Field(description="declared in fnhub.yaml: `fnhub apply` owns it")
    created_at: float
    updated_at: float


class ConnectorTypeOut(BaseModel):
    type: str
    settings: dict[str, Any] = Field(description="JSON Schema; secret fields are writeOnly")
    source_options: dict[str, Any] = Field(description="JSON Schema of a subscription's options")


class TestOut(BaseModel):
    ok: bool
    message: str


def _validate(type_: str, settings: dict[str, Any]) -> None:
    try:
        validate_settings(type_, settings)
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(422, "invalid_settings", str(exc)) from None


def _refused(exc: stored.ConnectorRefused) -> ApiError:
    """An edit the connector's subscriptions could not survive (`store.connectors`)."""
    return ApiError(422 if exc.kind == "invalid_settings" else 409, exc.kind, str(exc))


def _out(row: Connector) -> dict[str, Any]:
    return {
        "name": row.name,
        "type": row.type,
        "description": row.description,
        "settings": masked(row.settings),
        "provisioned": row.provisioned,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _box(request: Request) -> SecretBox:
    return state_of(request).secret_box


@router.get("/connector-types", response_model=list[ConnectorTypeOut], responses=responses(401))
async def list_connector_types() -> list[dict[str, Any]]:
    """Every connector type with its settings and subscription options as JSON Schema, so a
    form can be built from what the server validates."""
    return type_forms()


@router.get("/connectors", response_model=ListPage[ConnectorOut], responses=responses(401, 422))
async def list_connectors(
    request: Request, page: PageRequest = Depends(page_request)
) -> dict[str, Any]:
    """Connectors by name, a page at a time."""
    db = context_of(request).db
    rows, meta = await asyncio.to_thread(fetch_page, db, [Connector.name], page)
    return {"items": [_out(r) for r in rows], **meta}


def _get(request: Request, name: str) -> Connector:
    with context_of(request).db.session() as session:
        row = session.get(Connector, name)
    if row is None:
        raise ApiError(404, "unknown_connector", f"no connector '{name}'")
    return row


@router.get("/connectors/{name}", response_model=ConnectorOut, responses=responses(401, 404))
async def get_connector(request: Request, name: str = Name) -> dict[str, Any]:
    return _out(await asyncio.to_thread(_get, request, name))


@router.put("/connectors/{name}", response_model=ConnectorOut, responses=responses(400, 401, 422))
async def put_connector(request: Request, body: ConnectorIn, name: str = Name) -> dict[str, Any]:
    """Create or replace a connector."""
    box = _box(request)
    who = actor(request)

    def save() -> Connector:
        with context_of(request).db.session() as session, session.begin():
            row, _before, _after = stored.save_connector(
                session,
                box,
                name,
                type_=body.type,
                description=body.description,
                settings=body.settings,
                actor=who,
                validate=_validate,
            )
            return row

    try:
        return _out(await asyncio.to_thread(save))
    except stored.ConnectorRefused as exc:
        raise _refused(exc) from None


@router.delete("/connectors/{name}", response_model=Deleted, responses=responses(401, 404, 409))
async def delete_connector(request: Request, name: str = Name) -> dict[str, bool]:
    box = _box(request)
    who = actor(request)

    def remove() -> bool:
        with context_of(request).db.session() as session, session.begin():
            return stored.delete_connector(session, box, name, actor=who)

    try:
        removed = await asyncio.to_thread(remove)
    except stored.ConnectorRefused as exc:
        raise _refused(exc) from None
    if not removed:
        raise ApiError(404, "unknown_connector", f"no connector '{name}'")
    return {"deleted": True}


@router.post("/connectors/{name}/test", response_model=TestOut, responses=responses(401, 404, 503))
async def test_connector(request: Request, name: str = Name) -> dict[str, Any]:
    """Try to connect with the stored settings; the answer says whether it worked and why not."""
    row = await asyncio.to_thread(_get, request, name)
    settings = _box(request).open(row.settings)
    try:
        await asyncio.wait_for(test_connection(row.type, settings), 30)
    except Exception as exc:  # a failed test is an answer, not a server error
        return {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "message": ""}
