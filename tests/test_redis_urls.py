"""`redis+sentinel://` URLs: every form parsed, bad ones refused with the reason, passwords
hidden wherever a URL is shown."""

from __future__ import annotations

import pytest

from fnhub.redis_client import SentinelUrl, is_sentinel_url, parse_sentinel_url, redacted_url


def test_every_form_parses() -> None:
    assert parse_sentinel_url("redis+sentinel://a:1,b:2,c/svc/3") == SentinelUrl(
        (("a", 1), ("b", 2), ("c", 26379)), "svc", 3
    )
    parsed = parse_sentinel_url("redis+sentinel://:p%40ss@[::1]:5000/svc?sentinel_password=s")
    assert parsed == SentinelUrl((("::1", 5000),), "svc", 0, None, "p@ss", "s")
    assert parse_sentinel_url("REDIS+SENTINEL://u:pw@h/svc").username == "u"
    assert is_sentinel_url("redis+sentinel://h/s") and not is_sentinel_url("redis://h:6379/0")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+sentinel:///svc", "at least one Sentinel"),
        ("redis+sentinel://h:1", "/service_name"),
        ("redis+sentinel://h:1/svc/x", "not an integer"),
        ("redis+sentinel://h:x/svc", "not a number"),
        ("redis+sentinel://h/svc/0/more", "/service_name"),
        ("redis+sentinel://h/svc?ssl=1", "unknown option"),
        ("rediss+sentinel://h/svc", "TLS to the Sentinels and the servers. is not supported"),
    ],
)
def test_bad_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sentinel_url(url)


def test_passwords_never_shown() -> None:
    url = "redis+sentinel://user:secret@a:1,b:2/svc/1?sentinel_password=other"
    shown = redacted_url(url)
    assert "secret" not in shown and "other" not in shown
    assert shown == "redis+sentinel://user:***@a:1,b:2/svc/1?sentinel_password=***"
    assert redacted_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redacted_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
