"""The `envs:` section of fnhub.yaml: declared env variables become provisioned rows.

    envs:
      REGION: eu-west                                  # a string
      BATCH: {type: integer, value: 500}
      DB_PASSWORD: {type: password, value: "${DB_PASSWORD}"}   # from the environment, not git

Everything is checked before anything is written; then, in one transaction, the provisioned
env variables become exactly the declared ones (those made through the API or CLI stay) and
workers are told (the envs revision).
"""

from __future__ import annotations

from typing import Any

from fnhub import audit, project
from fnhub.config import Settings
from fnhub.envs.repo import EnvSpec, spec_from_yaml, sync_provisioned
from fnhub.envs.values import InvalidEnv
from fnhub.revisions import bump


def apply_envs(settings: Settings, value: Any) -> project.SectionChanges:
    from fnhub.bootstrap import open_services
    from fnhub.secret_box import SecretBox, resolve_secret_key

    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(
            "fnhub.yaml: envs must map names to values, e.g. "
            "`envs: {REGION: eu-west, BATCH: {type: integer, value: 500}}`"
        )
    specs: dict[str, EnvSpec] = {}
    for name, data in value.items():
        try:
            specs[str(name)] = spec_from_yaml(str(name), data)
        except InvalidEnv as exc:
            raise ValueError(f"fnhub.yaml: envs: {exc}") from None
    services = open_services(settings, migrate=False)
    try:
        box = SecretBox(resolve_secret_key(settings))
        with services.db.session() as session, session.begin():
            changes = sync_provisioned(session, box, specs, actor=audit.PROJECT)
        bump(services.redis, services.keys.envs_revision)
    finally:
        services.close()
    return project.SectionChanges.of("envs", changes)
