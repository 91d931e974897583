"""What an endpoint is made of: function, mode, fixed kwargs, auth, throttling, cache, expiry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from fnhub.json_values import PortableObject
from fnhub.secret_box import MASK
from fnhub.server.schemas import Strict

#: a fixed kwarg with this value is filled by the caller (omitted when the caller does not)
CALLER = "$caller"
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
HMAC_SECRET_MIN_CHARS = 16


class NoAuth(Strict):
    type: Literal["none"] = "none"


class TokenAuth(Strict):
    """A fixed token in a header or a query parameter."""

    type: Literal["token"]
    location: Literal["header", "query"] = "header"
    field: str = Field("X-Token", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    token: str = Field(min_length=8, max_length=512)


class BasicAuth(Strict):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=512)


class HmacAuth(Strict):
    """HMAC-SHA256 over method, path, timestamp, nonce and body hash; nonces are single-use."""

    type: Literal["hmac"]
    secret: str = Field(
        max_length=512, description=f"16 characters or more ({MASK}: keep the stored one)"
    )
    max_skew: int = Field(300, ge=10, le=3600, description="seconds a timestamp may be off")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        """At least 16 characters, unless it is the mask the API shows (sent back unchanged,
        it keeps the stored secret)."""
        if value != MASK and len(value) < HMAC_SECRET_MIN_CHARS:
            raise ValueError(f"an hmac secret has at least {HMAC_SECRET_MIN_CHARS} characters")
        return value


class FunctionAuth(Strict):
    """A function (called with `request={method, path, query, headers}`) decides: truthy
    result → allowed."""

    type: Literal["function"]
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


Auth = Annotated[
    NoAuth | TokenAuth | BasicAuth | HmacAuth | FunctionAuth, Field(discriminator="type")
]


class Throttle(Strict):
    """Most requests allowed per fixed window; none = unlimited."""

    second: int | None = Field(None, ge=1, le=1_000_000)
    minute: int | None = Field(None, ge=1, le=1_000_000_000)
    hour: int | None = Field(None, ge=1, le=1_000_000_000)
    day: int | None = Field(None, ge=1, le=1_000_000_000)


class EndpointIn(Strict):
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
    mode: Literal["sync", "async"] = "sync"
    description: str = Field("", max_length=2000)
    kwargs: PortableObject | None = Field(
        None,
        description=f"fixed kwargs; a value of '{CALLER}' is filled by the caller. "
        "null: every kwarg comes from the caller",
    )
    auth: Auth = Field(default_factory=NoAuth)
    throttle: Throttle = Field(default_factory=Throttle)
    cache_result: float | None = Field(None, gt=0, le=30 * 86400, description="seconds")
    timeout: float | None = Field(None, gt=0, le=86400)
    show_traceback: bool = False
    show_logs: bool = Field(
        False, description="async: pollers of /e/{name}/tasks/{id} see the function's output"
    )
    enabled: bool = True
    expires_at: float | None = Field(None, ge=0, le=1e11, description="epoch seconds")
    record_limit: int | None = Field(None, ge=0, le=1_000_000)


class EndpointOut(BaseModel):
    name: str
    url: str
    function: str
    mode: str
    description: str
    kwargs: dict[str, Any] | None
    auth: dict[str, Any] = Field(description="secrets shown as ********")
    throttle: dict[str, Any]
    cache_result: float | None
    timeout: float | None
    show_traceback: bool
    show_logs: bool
    enabled: bool
    expires_at: float | None
    record_limit: int | None
    provisioned: bool = Field(description="declared in fnhub.yaml (`fnhub apply` owns it)")
    created_at: float
    updated_at: float
