"""`bench/clusterlib/timeline.py` splits each late call's seconds into the load's wait, the
server's answer and the queue, per half second around a fault (made-up timelines)."""

from __future__ import annotations

from bench.clusterlib.timeline import bins, table

FAULT = {"fault": "kill -9 server2", "start": 97.0, "inject": 100.0, "stop": 110.0}


def _raw(calls: dict[str, tuple[float, float, float, int, float | None]]) -> dict:
    """id → (due, left, answered, via, ran or None)."""
    return {
        "sent": {"http": {i: c[0] for i, c in calls.items()}},
        "left": {"http": {i: c[1] for i, c in calls.items()}},
        "answered": {"http": {i: c[2] for i, c in calls.items()}},
        "via": {"http": {i: c[3] for i, c in calls.items()}},
        "runs": {"http": {i: [c[4]] for i, c in calls.items() if c[4] is not None}},
        "refused": {"http": [100.1, 100.2]},
    }


def test_a_backlog_shows_as_the_wait_for_the_limit() -> None:
    raw = _raw(
        {
            "h1": (99.6, 99.6, 99.61, 0, 99.62),  # before the fault: on time
            "h2": (100.1, 101.5, 101.6, 0, 101.7),  # held 1.4 s by the limit: late
            "h3": (100.2, 100.2, 101.5, 1, 101.55),  # the server answered in 1.3 s: late
            "h4": (100.3, 100.3, 100.35, 0, None),  # never ran: late
            "h5": (100.6, 100.6, 100.7, 1, 100.65),  # ran before its 202 was read: on time
            "h6": (111.0, 111.0, 111.1, 0, 111.2),  # after the phase: not counted
        }
    )
    out = bins(FAULT, raw)
    assert [(b.at, b.calls, b.late, b.via, b.refused) for b in out] == [
        (-0.5, 1, 0, (1, 0), 0),
        (0.0, 3, 3, (2, 1), 2),
        (0.5, 1, 0, (0, 1), 0),
    ]
    during = out[1]
    assert sorted(round(w, 2) for w in during.waited) == [0.0, 0.0, 1.4]
    assert sorted(round(a, 2) for a in during.answer) == [0.05, 0.1, 1.3]
    assert sorted(round(t, 2) for t in during.total) == [1.35, 1.6]  # h4 never ran
    assert round(out[2].queued[0], 2) == -0.05


def test_the_table_names_each_fault_and_filters_by_name() -> None:
    raw = _raw({"h1": (100.1, 100.1, 100.2, 0, 100.3)})
    results = {"faults": [{**FAULT, "recovery_s": 0.0, "flows": {"http": {"late": 0}}}]}
    text = table(results, raw)
    assert text.splitlines()[0].startswith("== kill -9 server2: back to normal 0.0 s")
    assert len(text.splitlines()) == 3
    assert table(results, raw, "beat") == ""
