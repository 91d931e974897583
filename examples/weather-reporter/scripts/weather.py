"""Publishes a weather report per location to the hub; topic = <base>/<location>."""

import random
import time

import fnhub

TOPIC_BASE = "http://127.0.0.1:8090/weather"
LOCATIONS = ["colombo", "london", "tokyo"]


def report(location: str) -> dict:
    # a real deployment calls a weather API here; the example makes up plausible values
    return {
        "location": location,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "temperature_c": round(random.uniform(-5, 35), 1),
        "conditions": random.choice(["sunny", "cloudy", "rain", "wind"]),
    }


@fnhub.api("Publish a weather report for every location", timeout=30)
def publish_reports(locations: list | None = None) -> dict:
    sent = {}
    for location in locations or LOCATIONS:
        sent[location] = fnhub.websub.publish(f"{TOPIC_BASE}/{location}", report(location))
    return sent
