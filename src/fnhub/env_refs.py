"""`${NAME}` in `fnhub.yaml` values: secrets come from the environment, so the file can be in git.

    endpoints:
      orders: {function: shop.order, auth: {type: token, token: "${ORDERS_TOKEN}"}}

Every string value of a section (not `settings:`, which has `FNHUB_*` variables) may name
environment variables as `${NAME}`; `$${NAME}` stands for the text `${NAME}`. A variable that is
not set is an error naming where it was used, never an empty secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: Any, where: str, environ: Mapping[str, str] | None = None) -> Any:
    """`value` with every `${NAME}` in its strings replaced; `where` names it in errors."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if name not in env:
                raise ValueError(f"{where}: environment variable {name} is not set")
            return env[name]

        return _REF.sub(substitute, value)
    if isinstance(value, dict):
        return {key: expand(item, f"{where}.{key}", env) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, f"{where}[{i}]", env) for i, item in enumerate(value)]
    return value
