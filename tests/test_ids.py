"""Task ids and invoke ids made a batch at a time keep the properties of one-at-a-time ids."""

from __future__ import annotations

import time
import uuid

from fnhub.subscriptions.messages import new_invoke_ids
from fnhub.tasks import new_task_id, new_task_ids


def test_task_ids_in_bulk_are_unique_and_time_ordered() -> None:
    before = new_task_id()
    time.sleep(0.002)
    ids = new_task_ids(5000)
    assert len(set(ids)) == 5000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
    assert all(before[:12] < i[:12] for i in ids)  # the millisecond prefix sorts by creation
    assert abs(int(ids[0][:12], 16) - time.time() * 1000) < 1000
    assert new_task_ids(0) == []


def test_invoke_ids_in_bulk_are_distinct_version_4_uuids() -> None:
    ids = new_invoke_ids(5000)
    assert len(set(ids)) == 5000
    for text in ids:
        value = uuid.UUID(text)
        assert (value.version, value.variant, str(value)) == (4, uuid.RFC_4122, text)
    assert new_invoke_ids(0) == []
    (one,) = new_invoke_ids(1)
    assert str(uuid.UUID(one)) == one
