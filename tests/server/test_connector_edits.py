"""A connector edited under a subscription that reads it on `path: direct`: settings that would
leave its worker children unable to make their consumer are refused, naming the subscription and
the reason, and the stored connector stays as it was. Deleting a connector a subscription still
reads is refused the same way."""

from __future__ import annotations

from .conftest import Stack

MQTT = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": 1883}}
DIRECT = {
    "connector": "plant",
    "topics": ["edits/#"],
    "function": "demo.echo",
    "path": "direct",
    "mode": "single",
    "enabled": False,  # nothing needs to run: the check is made when the connector is saved
}


def test_settings_a_direct_subscription_cannot_run_on_are_refused_with_the_reason(
    stack: Stack,
) -> None:
    with stack.admin() as c:
        assert c.put("/api/v1/connectors/plant", json=MQTT).status_code == 200
        assert c.put("/api/v1/subscriptions/on-plant", json=DIRECT).status_code == 200
        for change in ({"clean_start": True}, {"protocol": "3.1.1"}, {"session_expiry": 0}):
            edited = {**MQTT, "settings": {**MQTT["settings"], **change}}
            refused = c.put("/api/v1/connectors/plant", json=edited)
            assert refused.status_code == 422, refused.text
            message = refused.json()["error"]["message"]
            assert "subscription 'on-plant' reads this connector on path: direct" in message
            assert "persistent session" in message  # the reason, as the subscription gets it
            assert c.get("/api/v1/connectors/plant").json()["settings"] == MQTT["settings"]

        # a harmless edit goes through; so does the first once the subscription is queued
        assert c.put(
            "/api/v1/connectors/plant",
            json={**MQTT, "settings": {**MQTT["settings"], "keepalive": 30}},
        ).is_success
        queued = {**DIRECT, "path": "queued"}
        assert c.put("/api/v1/subscriptions/on-plant", json=queued).status_code == 200
        clean = {**MQTT, "settings": {**MQTT["settings"], "clean_start": True}}
        assert c.put("/api/v1/connectors/plant", json=clean).status_code == 200

        in_use = c.delete("/api/v1/connectors/plant")
        assert in_use.status_code == 409, in_use.text
        assert "used by subscription(s) on-plant" in in_use.json()["error"]["message"]
        assert c.get("/api/v1/connectors/plant").status_code == 200
        assert c.delete("/api/v1/subscriptions/on-plant").status_code == 200
        assert c.delete("/api/v1/connectors/plant").status_code == 200
