"""A DataFlux Func script, unchanged, under `fnhub serve` (embedded Redis and SQLite), called
through the CLI by its DataFlux Func id and through an endpoint."""

from __future__ import annotations

import httpx
import yaml
from tests.conftest import wait_for
from tests.test_serve import _env, _fnhub, _quiet, _serve, _stop

from fnhub.calling.queue_client import QueueClient
from fnhub.config import load_settings

SHOP = """
@DFF.API("Add an order line", category="shop")
def add(item, qty=1):
    total = DFF.CACHE.incrby("qty:" + item, qty)
    print("added", qty, item)
    return {"item": item, "total": total, "func": _DFF_FUNC_ID}


@DFF.API("Order page")
def page(item="tea"):
    return DFF.RESP({"item": item, "total": int(DFF.CACHE.get("qty:" + item) or 0)},
                    status_code=200, headers={"X-Origin": _DFF_ORIGIN})
"""


def test_a_dataflux_func_script_under_fnhub_serve(tmp_path):
    env = _env(tmp_path)
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "shop.py").write_text(SHOP)
    endpoints = {"endpoints": {"order": {"function": "myset__shop.page", "mode": "sync"}}}
    (project / "fnhub.yaml").write_text(yaml.safe_dump(endpoints))
    serve = _serve(project, env)
    try:
        client = QueueClient(load_settings(project))
        wait_for(lambda: _quiet(lambda: client.queue_has_worker("sync")), timeout=60)
        for _ in range(2):
            called = _fnhub(
                "call",
                "myset__shop.add",
                "--kwargs",
                '{"item": "tea", "qty": 2}',
                cwd=project,
                env=env,
            )
            assert called.returncode == 0, called.stderr
        assert '"total": 4' in called.stdout and '"func": "shop.add"' in called.stdout
        assert "added 2 tea" in called.stderr
        answer = httpx.get(
            f"http://127.0.0.1:{env['FNHUB_PORT']}/e/order", params={"item": "tea"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"item": "tea", "total": 4}
        assert answer.headers["x-origin"] == "syncAPI"
        client.close()
    finally:
        _stop(serve)
    assert serve.returncode == 0, (project / "serve.log").read_text()
