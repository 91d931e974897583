"""Redaction of credentials in what records show: names, depth, copies only when needed."""

from __future__ import annotations

from fnhub.config import Settings
from fnhub.server.endpoints import redacted_names
from fnhub.server.redaction import MAX_DEPTH, REDACTED, name_set, redact, redacted_headers

DEFAULTS = Settings().redact_names


def test_names_match_case_insensitively_with_underscores_as_dashes() -> None:
    names = name_set(["X-Api-Key", "Authorization"])
    value = {"X_API_KEY": "k", "authorization": "a", "api_key": "kept", "n": [{"x-api-key": 1}]}
    assert redact(value, names) == {
        "X_API_KEY": REDACTED,
        "authorization": REDACTED,
        "api_key": "kept",
        "n": [{"x-api-key": REDACTED}],
    }
    assert value["X_API_KEY"] == "k" and value["n"] == [{"x-api-key": 1}]  # the input is intact


def test_nothing_to_hide_returns_the_value_itself() -> None:
    value = {"a": [1, {"b": "c"}], "d": None}
    assert redact(value, name_set(DEFAULTS)) is value


def test_too_deep_to_check_is_redacted_whole() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    out = redact({"deep": deep}, name_set(DEFAULTS))
    for _ in range(MAX_DEPTH - 1):
        out = out["deep"] if isinstance(out, dict) else out[0]
    assert out == [REDACTED]


def test_an_endpoints_own_credential_is_always_redacted() -> None:
    token = {"type": "token", "location": "header", "field": "X-Token", "token": "t" * 8}
    assert redacted_names([], token) == {"x-token"}
    assert redacted_names([], {"type": "basic"}) == {"authorization"}
    assert redacted_names([], {"type": "hmac"}) == {"x-fnhub-signature"}
    assert redacted_names(DEFAULTS, {"type": "none"}) == {
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-api-key",
    }


def test_headers_keep_their_names_and_lose_credential_values() -> None:
    headers = [("cookie", "s=1"), ("accept", "*/*")]
    assert redacted_headers(headers, name_set(DEFAULTS)) == {"cookie": REDACTED, "accept": "*/*"}
