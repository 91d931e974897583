"""The smaller members in a worker-like process: responses, resources, SIGN, CONFIG, TASK."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import redis

from fnhub import runtime
from fnhub.config import Settings
from fnhub.dff import DFF
from fnhub.response import RESPONSE_MARKER
from fnhub.secret_box import resolve_secret_key
from fnhub.tasks import Task


@pytest.fixture
def in_task(settings: Settings) -> Iterator[Task]:
    client = redis.Redis.from_url(settings.redis_url)
    runtime.init(settings, client)
    task = Task(
        function="site.page",
        origin="endpoint",
        origin_id="page",
        meta={
            "http": {
                "method": "post",
                "path": "/e/page",
                "client": "10.0.0.9",
                "headers": {"host": "example.test", "x-a": "1"},
            }
        },
    )
    token = runtime.current_task.set(task)
    yield task
    runtime.current_task.reset(token)
    runtime.init(None, None)  # type: ignore[arg-type]
    client.close()


def spec(response: object) -> dict:
    return response.to_json()[RESPONSE_MARKER]  # type: ignore[attr-defined]


def test_responses(in_task):
    assert spec(DFF.RESP("<b>x</b>", content_type="html"))["content_type"] == (
        "text/html; charset=utf-8"
    )
    download = spec(DFF.RESP({"a": 1}, download=True))
    assert download["filename"] == "api-resp.json" and download["body"] == {"a": 1}
    assert spec(DFF.RESP("x", download="report.csv"))["filename"] == "report.csv"
    assert spec(DFF.RESP("x", content_type="image/png"))["content_type"] == "image/png"
    large = spec(DFF.RESP_LARGE_DATA([1, 2]))
    assert large["content_type"] == "application/json" and large["body"] == [1, 2]
    redirect = spec(DFF.REDIRECT("/next?q=é"))
    assert redirect["status"] == 302 and redirect["headers"] == {"Location": "/next?q=%C3%A9"}


def test_resp_file_reads_the_resource_folder(in_task, settings):
    path = DFF.RSRC("reports/today.csv")
    assert path == str(settings.data_dir / "resources" / "reports" / "today.csv")
    (settings.data_dir / "resources" / "reports").mkdir(parents=True)
    (settings.data_dir / "resources" / "reports" / "today.csv").write_text("a,b\n1,2\n")
    sent = spec(DFF.RESP_FILE("reports/today.csv"))
    assert sent["filename"] == "today.csv" and sent["content_type"] == "text/csv"
    assert sent["encoding"] == "base64"
    inline = spec(DFF.RESP_FILE("/reports/today.csv", download=False, auto_delete=True))
    assert inline["filename"] is None
    assert not (settings.data_dir / "resources" / "reports" / "today.csv").exists()
    with pytest.raises(FileNotFoundError, match="No such file in Resource folder"):
        DFF.RESP_FILE("reports/today.csv")


def test_sign_config_and_task(in_task, settings, monkeypatch):
    secret = resolve_secret_key(settings)
    assert DFF.SIGN("a", 1) == hashlib.md5(f"{secret}\na\n1".encode()).hexdigest()
    monkeypatch.setenv("DFF_CUSTOM_REGION", "eu")
    monkeypatch.setenv("FNHUB_CUSTOM_TEAM", "ops")
    assert DFF.CONFIG.get("CUSTOM_REGION") == "eu" and DFF.CONFIG("CUSTOM_TEAM") == "ops"
    assert DFF.CONFIG.get("SECRET", "hidden") == "hidden"
    assert DFF.CONFIG.query() == {"CUSTOM_REGION": "eu", "CUSTOM_TEAM": "ops"}
    assert DFF.TASK.task_id == in_task.id and DFF.TASK.func_name == "page"
    assert DFF.TASK.origin == "syncAPI" and DFF.TASK.origin_id == "page"
    assert DFF.TASK.http_request == {
        "method": "POST",
        "url": "/e/page",
        "originalUrl": "/e/page",
        "path": "/e/page",
        "host": "example.test",
        "headers": {"host": "example.test", "x-a": "1"},
        "ip": "10.0.0.9",
    }
    with pytest.raises(NotImplementedError, match=r"DFF\.TASK\.cache_db is not supported"):
        _ = DFF.TASK.cache_db


def test_cron_job_helper_acts_on_the_running_job_or_the_one_named(in_task, settings):
    import fnhub.cron

    cron = DFF.CRON_JOB
    assert cron.get_cron_expr() is None  # an endpoint task: no job of its own, nothing done
    cron.set_cron_expr("*/5 * * * *")
    assert cron.get_all_cron_expr() == {}
    cron.set_cron_expr("*/5 * * * *", expires=60, entity_id="nightly")
    cron.set_crontab("0 * * * *", entity_id="hourly")  # DataFlux Func's older name
    assert fnhub.cron.get_expression("nightly") == "*/5 * * * *"
    assert cron.get_all_cron_expr() == {"nightly": "*/5 * * * *", "hourly": "0 * * * *"}
    cron.clear_cron_expr(entity_id="hourly")
    assert cron.get_cron_expr(entity_id="hourly") is None
    cron.pause(120, entity_id="nightly")
    ttl = runtime.redis_client().ttl(runtime.keys().cron_pause("nightly"))
    assert 100 < ttl <= 120
    token = runtime.current_task.set(Task(function="site.tick", origin="cron", origin_id="own"))
    try:
        cron.set_cron_expr("*/3 * * * *")
        assert cron.get_cron_expr() == "*/3 * * * *"
        assert fnhub.cron.get_expression("own") == "*/3 * * * *"
    finally:
        runtime.current_task.reset(token)
    with pytest.raises(NotImplementedError, match="fnhub cron run"):
        cron.call("own")


def test_dff_func_chains_stop_at_five(in_task):
    from fnhub.dff.calls import FuncCallChainTooLong
    from fnhub.dff.variables import CHAIN_META

    deep = Task(function="s.e", meta={CHAIN_META: ["s.a", "s.b", "s.c", "s.d"]})
    token = runtime.current_task.set(deep)
    try:
        with pytest.raises(FuncCallChainTooLong) as raised:
            DFF.FUNC("s.f")
        assert str(raised.value) == "`s.a` -> `s.b` -> `s.c` -> `s.d` -> `s.e`"
    finally:
        runtime.current_task.reset(token)


def test_variables_of_a_task_with_odd_meta_do_not_raise():
    """They are computed before the call, outside the function's error handling: a task whose
    meta has unexpected shapes (a replayed or hand-made one) still runs."""
    from fnhub.dff.variables import values_for

    odd = Task(
        function="a.b",
        meta={"http": {"headers": [("a", "b")]}, "cron": "x", "dff_call_chain": "abc"},
    )
    values = values_for(odd)
    assert values["_DFF_HTTP_REQUEST"]["headers"] == {}
    assert values["_DFF_FUNC_CHAIN"] == ["a.b"] and values["_DFF_CRON_EXPR"] is None
