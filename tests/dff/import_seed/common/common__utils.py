"""Helpers shared by the script sets (DataFlux Func script `common__utils`)."""

import json


def money(cents):
    return f"{cents / 100:.2f}"


def tag(payload):
    data = json.loads(payload) if isinstance(payload, str) else dict(payload)
    data["seen_by"] = "common__utils"
    return data


@DFF.API("Health", category="ops", tags=["ops", "health", "ops"])
def ping():
    return "pong"
