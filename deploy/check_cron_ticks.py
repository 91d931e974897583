"""`python3 deploy/check_cron_ticks.py RECORDS_JSON`: exit 0 when the task records of
deploy/check-project's every-second cron job (`GET /api/v1/tasks?function=hello.tick`) show every
tick run exactly once — none doubled, none missing — over at least 5 seconds. Used by
deploy/check-image.sh and deploy/check-without-docker.sh, where two beats and two servers'
beat candidates compete for each tick."""

import json
import sys

page = json.loads(sys.argv[1])
items = page.get("items", page if isinstance(page, list) else [])
ticks = [round(t["trigger_time"]) for t in items if t.get("origin") == "cron"]
assert ticks, "no cron records"
span = max(ticks) - min(ticks) + 1
print("cron records", len(ticks), "distinct seconds", len(set(ticks)), "span", span)
assert len(ticks) >= 5, ticks
assert len(ticks) == len(set(ticks)), "a tick ran twice"
assert len(ticks) == span, "a tick is missing"
