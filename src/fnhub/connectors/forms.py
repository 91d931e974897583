"""What a form needs to edit a connector: each type's settings and source options as JSON
Schema, generated from the same pydantic models that validate them (so a form cannot drift
from what the server accepts). Fields the API masks are marked `writeOnly`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fnhub.connectors.types import connector_types
from fnhub.secret_box import is_secret_field


def _mark_secrets(schema: dict[str, Any]) -> dict[str, Any]:
    """Mark secret properties (here and in `$defs`) writeOnly: the API shows them masked."""
    for model in (schema, *schema.get("$defs", {}).values()):
        for name, prop in model.get("properties", {}).items():
            if is_secret_field(name):
                prop["writeOnly"] = True
    return schema


def schema_of(model: type[BaseModel] | None) -> dict[str, Any]:
    if model is None:
        return {"type": "object", "properties": {}}
    return _mark_secrets(model.model_json_schema())


def type_forms() -> list[dict[str, Any]]:
    """[{"type", "settings": schema, "source_options": schema}] for every registered type."""
    return [
        {
            "type": name,
            "settings": schema_of(kind.settings_model),
            "source_options": schema_of(kind.source_options),
        }
        for name, kind in sorted(connector_types.items())
        if kind.in_console
    ]
