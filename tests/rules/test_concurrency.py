"""`@fnhub.api(concurrency=N)`: at most N runs at once across every worker process."""

from __future__ import annotations

import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import time

    import fnhub


    @fnhub.api("two at a time", concurrency=2)
    def limited(i):
        start = time.time()
        time.sleep(0.5)
        return {"i": i, "start": start, "end": time.time()}


    @fnhub.api("no limit")
    def free(i):
        start = time.time()
        time.sleep(0.5)
        return {"i": i, "start": start, "end": time.time()}
    """
)


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _run_all(client, ref: str, n: int) -> list[tuple[float, float]]:
    ids = [client.submit(ref, {"i": i}, wait=True).id for i in range(n)]
    results = [client.wait(task_id, 30) for task_id in ids]
    assert all(r is not None and r.status == "success" for r in results), results
    assert sorted(r.result["i"] for r in results) == list(range(n))
    return [(r.result["start"], r.result["end"]) for r in results]


def test_concurrency_limit_holds_across_processes(
    client, publish, start_worker, services, settings
):
    publish({"conc": SCRIPT})
    # prefetch 1, so each child reads one task at a time and all four can run at once
    start_worker(processes=4, settings_override=settings.model_copy(update={"prefetch": 1}))
    started = time.monotonic()
    spans = _run_all(client, "conc.limited", 6)
    assert _max_overlap(spans) == 2
    assert time.monotonic() - started >= 1.5
    # every slot was given back with its task's acknowledgement
    assert services.redis.zcard(services.keys.concurrency("conc.limited")) == 0
    # without a limit the same four processes run four at once (the limit above is not chance)
    assert _max_overlap(_run_all(client, "conc.free", 4)) == 4


def test_timed_out_holder_gives_its_slot_back(client, publish, start_worker, services):
    publish(
        {
            "stuck": textwrap.dedent(
                """
                import time

                import fnhub


                @fnhub.api("one at a time", concurrency=1, timeout=1)
                def once(seconds):
                    time.sleep(seconds)
                    return seconds
                """
            )
        }
    )
    start_worker(processes=2)
    first = client.submit("stuck.once", {"seconds": 30}, wait=True)
    second = client.submit("stuck.once", {"seconds": 0}, wait=True)
    assert client.wait(first.id, 20).status == "timeout"
    assert client.wait(second.id, 20).status == "success"
    assert services.redis.zcard(services.keys.concurrency("stuck.once")) == 0
