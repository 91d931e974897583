"""The `endpoints:` section of fnhub.yaml: declared endpoints become provisioned rows.

    endpoints:
      greet:
        function: hello.greet
        auth: {type: token, token: "${GREET_TOKEN}"}   # from the environment, not from git
        throttle: {minute: 60}

Every option of `PUT /api/v1/endpoints/{name}` is accepted, checked by the same model
(`endpoint_store.parse_endpoint`), and the functions must be published. Everything is checked
before anything is written; then, in one transaction, the provisioned endpoints become exactly
the declared ones (endpoints made through the API or CLI stay) and servers reload them.
"""

from __future__ import annotations

from typing import Any

from fnhub import audit, project
from fnhub.config import Settings
from fnhub.revisions import bump
from fnhub.server.endpoint_spec import EndpointIn
from fnhub.server.endpoint_store import (
    EndpointSpecError,
    check_functions,
    parse_endpoint,
    sync_provisioned,
)


def apply_endpoints(settings: Settings, value: Any) -> project.SectionChanges:
    from fnhub.bootstrap import open_services
    from fnhub.calling.queue_client import QueueClient
    from fnhub.secret_box import SecretBox, resolve_secret_key

    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(
            "fnhub.yaml: endpoints must map names to definitions, e.g. "
            "`endpoints: {greet: {function: hello.greet}}`"
        )
    specs: dict[str, EndpointIn] = {}
    services = open_services(settings, migrate=False)
    try:
        active = QueueClient(settings, services.redis).active()
        for name, data in value.items():
            try:
                specs[name] = parse_endpoint(name, data)
                check_functions(name, specs[name], active)
            except EndpointSpecError as exc:
                raise ValueError(f"fnhub.yaml: {exc}") from None
        box = SecretBox(resolve_secret_key(settings))
        with services.db.session() as session, session.begin():
            changes = sync_provisioned(session, box, specs, actor=audit.PROJECT)
        bump(services.redis, services.keys.endpoints_revision)
    finally:
        services.close()
    return project.SectionChanges.of("endpoints", changes)
