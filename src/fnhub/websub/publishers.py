"""Who may publish through `/websub/hub`: a credential in `Authorization: Bearer <token>` or
`X-Api-Key: <token>`, either an admin API key (`fnhub.server.auth`) or a publisher token from
`websub_publisher_tokens` (name → token, for publishers that should not hold an admin key).

On a closed hub (`websub_open: false`, the default) a publish needs one; on an open hub it is
optional. A credential that is given must be valid either way. The identity returned names the
credential, so rate limits count per publisher rather than per address.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from fnhub.config import Settings
from fnhub.server.errors import ApiError
from fnhub.server.state import state_of

PUBLISHER_TOKEN_MIN_LENGTH = 16


class Unauthorized(Exception):
    """No valid credential where one is needed; the message is the reason shown."""


def check_publisher_tokens(settings: Settings) -> None:
    """Refuse guessable publisher tokens at start rather than accept them at every publish."""
    for name, token in settings.websub_publisher_tokens.items():
        if len(token) < PUBLISHER_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"websub_publisher_tokens[{name!r}] is shorter than "
                f"{PUBLISHER_TOKEN_MIN_LENGTH} characters"
            )


async def publisher(request: Request, settings: Settings, token: str | None) -> str | None:
    """`publisher:<name>` or `key:<admin key id>` for a valid credential, None when none was
    given; `Unauthorized` for a wrong one."""
    if not token:
        return None
    for name, expected in settings.websub_publisher_tokens.items():
        if hmac.compare_digest(token.encode(), expected.encode()):
            return f"publisher:{name}"
    try:
        return f"key:{await state_of(request).admin_auth.verify(token)}"
    except ApiError:
        pass
    raise Unauthorized("the credential is not a valid admin API key or publisher token")
