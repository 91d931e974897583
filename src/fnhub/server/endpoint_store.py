"""Endpoints as stored rows: the one place the API, the CLI and `fnhub apply` check, save,
remove and show them.

Checks are the API's own model (`endpoint_spec.EndpointIn`); `parse_endpoint` turns its errors
into one line naming the endpoint and the field. Secrets are sealed here (`secret_box`), every
change is audited in its transaction, and a save that changes nothing writes nothing. Callers
bump `keys.endpoints_revision` afterwards so servers reload.
"""

from __future__ import annotations

import difflib
import re
import time
from typing import Any, Literal, get_args

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.calling.errors import CallError
from fnhub.calling.maker import resolve
from fnhub.scripts.registry import ActiveScripts
from fnhub.secret_box import SecretBox, masked
from fnhub.server.endpoint_spec import NAME_PATTERN, EndpointIn, Throttle
from fnhub.server.models import Endpoint

Change = Literal["created", "updated", "unchanged"]

#: the columns an endpoint's definition is made of (besides its name and the bookkeeping)
SETTINGS = (
    "function",
    "mode",
    "description",
    "kwargs",
    "auth",
    "throttle",
    "cache_result",
    "timeout",
    "show_traceback",
    "show_logs",
    "enabled",
    "expires_at",
    "record_limit",
)


class EndpointSpecError(ValueError):
    """An endpoint definition that cannot be saved; the message names the endpoint and field."""


def parse_endpoint(name: str, data: Any) -> EndpointIn:
    """Check a definition (as fnhub.yaml or the CLI give it) with the API's own model."""
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise EndpointSpecError(
            f"endpoint {name!r}: the name must be 1 to 128 letters, digits, '_' or '-'"
        )
    if not isinstance(data, dict):
        raise EndpointSpecError(
            f"endpoint {name!r}: expected a mapping of options (function, mode, auth...)"
        )
    try:
        return EndpointIn.model_validate(data)
    except ValidationError as exc:
        raise EndpointSpecError(f"endpoint {name!r}: {_describe(exc, data)}") from None


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first error as `field.path: message`, with the nearest known name for a misspelt
    one."""
    errors = exc.errors()
    # a misspelt option also makes its right name missing: the misspelling is the news
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(part) for part in error["loc"]]
    if loc[:1] == ["auth"] and len(loc) > 2:
        loc.pop(1)  # pydantic puts the auth type (the union's tag) in the path
    where = ".".join(loc)
    message = str(error["msg"])
    if error["type"] == "string_pattern_mismatch" and loc[-1] == "function":
        message = f"expected 'script.function', got {error['input']!r}"
    elif error["type"] == "extra_forbidden":
        hint = difflib.get_close_matches(loc[-1], _known_fields(loc[:-1], data), n=1)
        message = "unknown option" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    return f"{where}: {message}" if where else message


def _known_fields(parent: list[str], data: dict[str, Any]) -> list[str]:
    model: type[BaseModel] | None = None
    if not parent:
        model = EndpointIn
    elif parent == ["throttle"]:
        model = Throttle
    elif parent == ["auth"] and isinstance(data.get("auth"), dict):
        model = _AUTH_MODELS.get(data["auth"].get("type"))
    return list(model.model_fields) if model is not None else []


#: auth type → its model, for suggestions
_AUTH_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(EndpointIn.model_fields["auth"].annotation)
}


def check_functions(name: str, spec: EndpointIn, active: ActiveScripts) -> None:
    """Refuse an endpoint (or its auth) naming a function no published script exports."""
    refs = [("function", spec.function)]
    if spec.auth.type == "function":
        refs.append(("auth.function", spec.auth.function))
    for field, ref in refs:
        try:
            resolve(active, ref)
        except CallError as exc:
            raise EndpointSpecError(f"endpoint {name!r}: {field}: {exc}") from None


def endpoint_out(row: Endpoint) -> dict[str, Any]:
    """What the API and `fnhub endpoints list --json` show: secrets as ********."""
    return {
        "name": row.name,
        "url": f"/e/{row.name}",
        **{field: getattr(row, field) for field in SETTINGS},
        "auth": masked(row.auth),
        "provisioned": bool(row.provisioned),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def endpoint_state(row: Endpoint, box: SecretBox) -> dict[str, Any]:
    """What the audit log compares: the definition, with secrets in clear (it masks them)."""
    return _state(row.name, {f: getattr(row, f) for f in SETTINGS}, bool(row.provisioned), box)


def _state(name: str, values: dict[str, Any], provisioned: bool, box: SecretBox) -> dict[str, Any]:
    return {
        "name": name,
        **values,
        "auth": audit.in_clear(box, values["auth"]),
        "provisioned": provisioned,
    }


def save_endpoint(
    session: Session,
    box: SecretBox,
    name: str,
    spec: EndpointIn,
    *,
    actor: str,
    provisioned: bool = False,
) -> tuple[Endpoint, Change]:
    """Create or replace an endpoint (a secret sent as ******** keeps the stored one)."""
    row = session.get(Endpoint, name)
    before = endpoint_state(row, box) if row is not None else None
    values = {field: getattr(spec, field) for field in SETTINGS}
    values["auth"] = box.seal(spec.auth.model_dump(), row.auth if row is not None else None)
    values["throttle"] = spec.throttle.model_dump(exclude_none=True)
    after = _state(name, values, provisioned, box)
    if row is not None and before == after:
        return row, "unchanged"
    now = time.time()
    if row is None:
        row = Endpoint(name=name, created_at=now)
        session.add(row)
    for field, value in values.items():
        setattr(row, field, value)
    row.provisioned = provisioned
    row.updated_at = now
    action = "endpoint.update" if before is not None else "endpoint.create"
    audit.record(session, actor, action, f"endpoint:{name}", before, after)
    return row, "updated" if before is not None else "created"


def delete_endpoint(session: Session, box: SecretBox, name: str, *, actor: str) -> bool:
    """Remove an endpoint (audited); False when there is none of that name."""
    row = session.get(Endpoint, name)
    if row is None:
        return False
    audit.record(session, actor, "endpoint.delete", f"endpoint:{name}", endpoint_state(row, box))
    session.delete(row)
    return True


def sync_provisioned(
    session: Session, box: SecretBox, specs: dict[str, EndpointIn], *, actor: str
) -> dict[str, list[str]]:
    """Make the declared endpoints exactly `specs` (those made through the API or CLI stay).
    Returns the names by what happened: created, updated, unchanged, removed."""
    changes: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "removed": []}
    for name, spec in specs.items():
        _row, change = save_endpoint(session, box, name, spec, actor=actor, provisioned=True)
        changes[change].append(name)
    gone = session.execute(
        select(Endpoint.name).where(
            Endpoint.provisioned.is_(True), Endpoint.name.not_in(list(specs))
        )
    ).scalars()
    for name in list(gone):
        delete_endpoint(session, box, name, actor=actor)
        changes["removed"].append(name)
    return changes
