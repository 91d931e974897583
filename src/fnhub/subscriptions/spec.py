"""A subscription as the runtime sees it: validated once, compared by fingerprint on reload."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

import msgspec

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class SpecError(ValueError):
    """A subscription definition that cannot run; the message names the field."""


class PublishTarget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a rule publishes: the subscription's own connector unless another is named."""

    topic: str
    connector: str | None = None
    qos: int = 1
    retain: bool = False
    kind: str | None = None
    #: broker-specific publish options; the connector type's `publish_options` reads the
    #: target (e.g. MQTT takes qos and retain, Redis kind, RabbitMQ options.exchange)
    options: dict[str, Any] = {}


class SubscriptionSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    connector: str
    topics: list[str]
    function: str | None = None
    sql: str | None = None
    mode: Literal["single", "multiple"] = "single"
    window: int = 100
    options: dict[str, Any] = {}
    publish: PublishTarget | None = None
    error_publish: PublishTarget | None = None
    queue: str | None = None
    record: bool = True
    record_limit: int | None = None
    enabled: bool = True
    #: queued: the server consumes and each message crosses the task queue to a worker child;
    #: direct: the function's worker children consume the broker themselves (docs/subscriptions.md)
    path: Literal["queued", "direct"] = "queued"

    @property
    def kind(self) -> str:
        """function | sql | route"""
        return "function" if self.function else "sql" if self.sql else "route"

    def fingerprint(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()

    def output_target(self, target: PublishTarget) -> tuple[str, str]:
        return target.connector or self.connector, target.topic


def parse_spec(data: dict[str, Any]) -> SubscriptionSpec:
    """Build and check a spec; raises SpecError with the field and the reason."""
    try:
        spec = msgspec.convert(data, SubscriptionSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"subscription {data.get('name', '?')!r}: {exc}") from None
    where = f"subscription {spec.name!r}"
    if not NAME.match(spec.name):
        raise SpecError(f"{where}: name must be letters, digits, '_', '.', '-' (max 128)")
    if not spec.topics or any(not t for t in spec.topics):
        raise SpecError(f"{where}: topics must be a non-empty list of non-empty strings")
    if spec.function and spec.sql:
        raise SpecError(f"{where}: give either `function` or `sql`, not both")
    if spec.kind == "route" and spec.publish is None:
        raise SpecError(f"{where}: a route (no function, no sql) needs a `publish` target")
    if spec.path == "direct" and spec.kind != "function":
        raise SpecError(f"{where}: path: direct runs a function; SQL rules and routes are queued")
    if not 1 <= spec.window <= 65535:
        raise SpecError(f"{where}: window must be between 1 and 65535")
    for label, target in (("publish", spec.publish), ("error_publish", spec.error_publish)):
        if target is not None and target.qos not in (0, 1, 2):
            raise SpecError(f"{where}: {label}.qos must be 0, 1 or 2")
    if spec.sql:
        from fnhub.sql import SqlSyntaxError, compile_sql

        try:
            compile_sql(spec.sql)
        except SqlSyntaxError as exc:
            raise SpecError(f"{where}: sql: {exc}") from None
    return spec
