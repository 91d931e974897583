"""DataFlux Func scripts, written as its documentation shows, run unchanged on a real worker:
`DFF` in every script's globals, `@DFF.API` published like `@fnhub.api`, built-in variables of
the running task, `DFF.FUNC` child tasks, `set__script.func` ids, unsupported members."""

from __future__ import annotations

import time

import pytest
from tests.conftest import call_ok, wait_for

from fnhub.dff import DFF
from fnhub.functions import FunctionOptions

# A DataFlux Func script as its docs write them: no import of DFF, DataFlux Func option names
DFF_SCRIPT = '''
import time


@DFF.API("Add two numbers", category="maths", tags=["b", "a", "b"], timeout=10,
         expires=60, cache_result=30, is_hidden=True, fixed_cron_expr="*/5 * * * *",
         delayed_cron_job=[0, 10], queue=8)
def add(x, y=1):
    """Adds."""
    return x + y


@DFF.API("Who am I")
def whoami(sleep=0):
    time.sleep(sleep)
    return {
        "task": _DFF_TASK_ID,
        "root": _DFF_ROOT_TASK_ID,
        "func": _DFF_FUNC_ID,
        "origin": _DFF_ORIGIN,
        "queue": _DFF_QUEUE,
        "chain": _DFF_FUNC_CHAIN,
        "trigger": _DFF_TRIGGER_TIME,
        "http": _DFF_HTTP_REQUEST,
        "cron": _DFF_CRON_EXPR,
        "task_view": DFF.TASK.task_id,
    }


@DFF.API("Queue a child")
def parent(n):
    DFF.FUNC("dffdemo.child", kwargs={"n": n})
    return _DFF_TASK_ID


@DFF.API("Queue itself")
def selfcall():
    DFF.FUNC("dffdemo.selfcall")


@DFF.API("Queue what does not exist")
def call_missing():
    DFF.FUNC("dffdemo.nope", {"a": 1})


@DFF.API("The child")
def child(n):
    DFF.CACHE.set("child:" + str(n), _DFF_TASK_ID + " " + _DFF_ROOT_TASK_ID + " "
                  + ",".join(_DFF_FUNC_CHAIN))


@DFF.API("Context per task")
def ctx(value):
    before = DFF.CTX.get("v")
    DFF.CTX.set("v", value)
    return {"before": before, "after": DFF.CTX.get("v"), "has": DFF.CTX.has("v")}


@dff.api("lower-case spelling")
def lower():
    print_var(41)
    DFF.LOG("logged", 1)
    return dff.cache.incr("lower")


@DFF.API("A response")
def resp():
    return DFF.RESP({"ok": True}, status_code=201, content_type="json", headers={"X-A": "1"})


@DFF.API("A response that cannot be sent")
def bad_resp(spelling):
    import fnhub
    if spelling == "dff":
        return DFF.RESP({"when": object()})
    return fnhub.Response({"when": object()})


@DFF.API("Unsupported")
def unsupported(name):
    return getattr(DFF, name)


@DFF.API("Cron helper outside cron")
def cron_outside():
    DFF.CRON_JOB.set_cron_expr("*/2 * * * *")
    return DFF.CRON_JOB.get_cron_expr()


@DFF.API("Threads")
def threads():
    keys = [DFF.THREAD.submit(lambda i: i * 2, i) for i in range(4)]
    DFF.THREAD.wait_all_finished()
    return sorted(DFF.THREAD.get_result(k).value for k in keys)
'''


@pytest.fixture
def dffdemo(services, client, start_worker):
    services.scripts.publish({"dffdemo": DFF_SCRIPT})
    start_worker(processes=1)
    return client


def test_dff_api_options_land_in_the_published_function_info(services):
    [script] = services.scripts.publish({"dffdemo": DFF_SCRIPT})
    add = next(f for f in script.functions if f.name == "add")
    assert add.doc == "Adds."
    assert add.options == FunctionOptions(
        title="Add two numbers",
        category="maths",
        tags=["a", "b"],
        timeout=10,
        expires=60,
        cache_result=30,
        hidden=True,
        fixed_crontab="*/5 * * * *",
        delayed_crontab=[0, 10],
        queue="q8",
    )
    assert [(p.name, p.required, p.default) for p in add.params] == [
        ("x", True, None),
        ("y", False, 1),
    ]
    names = {f.name for f in script.functions}
    assert {"whoami", "parent", "child", "lower", "resp"} <= names


def test_dff_api_refuses_what_fnhub_cannot_do(services):
    from fnhub.scripts.inspect import ScriptError

    bad = '@DFF.API("x", integration="autoRun")\ndef f():\n    pass\n'
    with pytest.raises(ScriptError, match="option `integration`: fnhub has no integrations"):
        services.scripts.publish({"dffbad": bad})
    typo = '@DFF.API("x", timeuot=3)\ndef f():\n    pass\n'
    with pytest.raises(ScriptError, match=r"unknown option `timeuot` \(did you mean `timeout`\?\)"):
        services.scripts.publish({"dffbad": typo})
    bad_tags = '@DFF.API("x", tags="ab")\ndef f():\n    pass\n'
    with pytest.raises(ScriptError, match=r"@DFF\.API option `tags`"):
        services.scripts.publish({"dffbad": bad_tags})
    dup = '@DFF.API("x")\ndef f():\n    pass\n@DFF.API("y")\ndef f():\n    pass\n'
    with pytest.raises(ScriptError, match="duplicate function name 'f'"):
        services.scripts.publish({"dffbad": dup})


def test_builtin_variables_are_the_running_tasks(dffdemo):
    """One worker process, one module: each task still sees its own id, function, origin."""
    first = call_ok(dffdemo, "dffdemo.whoami").result
    second = call_ok(dffdemo, "dffdemo.whoami").result
    assert first["task"] != second["task"]
    for result, task_id in ((first, first["task"]), (second, second["task"])):
        assert result["root"] == task_id
        assert result["task_view"] == task_id
        assert result["func"] == "dffdemo.whoami"
        assert result["origin"] == "direct"
        assert result["queue"] == "sync"
        assert result["chain"] == ["dffdemo.whoami"]
        assert result["http"] == {} and result["cron"] is None
        assert abs(result["trigger"] - time.time()) < 60
    # both submitted before either runs: the second still sees its own values
    a = dffdemo.submit("dffdemo.whoami", {"sleep": 0.2}, wait=True)
    b = dffdemo.submit("dffdemo.whoami", {}, wait=True)
    ra, rb = dffdemo.wait(a.id, 30), dffdemo.wait(b.id, 30)
    assert ra is not None and rb is not None
    assert (ra.result["task"], rb.result["task"]) == (a.id, b.id)


def test_dff_func_queues_a_child_task_that_runs(dffdemo, settings):
    import redis

    parent_id = call_ok(dffdemo, "dffdemo.parent", {"n": 7}).result
    r = redis.Redis.from_url(settings.redis_url)
    key = f"{settings.key_prefix}:cache:dffdemo:child:7"
    value = wait_for(lambda: r.get(key), timeout=20).decode()
    child_id, root_id, chain = value.split(" ")
    assert child_id != parent_id and root_id == parent_id
    assert chain == "dffdemo.parent,dffdemo.child"
    r.close()


def test_dff_func_refuses_cycles_and_unknown_functions(dffdemo):
    cycle = dffdemo.call("dffdemo.selfcall", {})
    assert cycle.error_type == "FuncCircularCall"
    assert cycle.error_message == "`dffdemo.selfcall` -> [`dffdemo.selfcall`]"
    missing = dffdemo.call("dffdemo.call_missing", {})
    assert missing.error_type == "CallError"
    assert "unknown function 'dffdemo.nope'" in (missing.error_message or "")


def test_dataflux_func_ids_resolve(dffdemo):
    result = call_ok(dffdemo, "myset__dffdemo.add", {"x": 2, "y": 3}, queue="sync")
    assert result.result == 5
    assert result.function == "dffdemo.add"  # the task names the function, not the alias


def test_dataflux_func_imports_of_other_scripts_resolve(services, client, start_worker, settings):
    """`import set__script` and `import __script` (the same set's), as DataFlux Func scripts
    import each other, find `script`; its `DFF.CACHE` keeps its own scope, as each script's
    `DFF` does in DataFlux Func."""
    import redis

    helper = "RATE = 3\n\ndef scale(x):\n    DFF.CACHE.set('last', x)\n    return x * RATE\n"
    main = (
        "import myset__helper\nfrom __helper import scale\n\n"
        '@DFF.API("Scale")\ndef run(x):\n'
        "    DFF.CACHE.set('mine', x)\n"
        "    return [myset__helper.scale(x), scale(x), DFF.CACHE.get('last', scope='helper')]\n"
    )
    services.scripts.publish({"helper": helper, "mainscript": main})
    start_worker(processes=1)
    assert call_ok(client, "mainscript.run", {"x": 2}).result == [6, 6, "2"]
    r = redis.Redis.from_url(settings.redis_url)
    prefix = f"{settings.key_prefix}:cache"
    assert r.get(f"{prefix}:helper:last") == b"2" and r.get(f"{prefix}:mainscript:mine") == b"2"
    assert not r.exists(f"{prefix}:mainscript:last")
    r.close()


def test_ctx_is_per_task_and_lower_case_spelling_works(dffdemo):
    assert call_ok(dffdemo, "dffdemo.ctx", {"value": 1}).result == {
        "before": None,
        "after": 1,
        "has": True,
    }
    assert call_ok(dffdemo, "dffdemo.ctx", {"value": 2}).result["before"] is None
    result = call_ok(dffdemo, "dffdemo.lower")
    assert result.result == 1
    assert "[VAR] type=`<class 'int'>`, value=`41`" in result.logs
    assert "logged 1" in result.logs


def test_resp_is_an_fnhub_response(dffdemo):
    marker = call_ok(dffdemo, "dffdemo.resp").result["$fnhub_response"]
    assert marker["status"] == 201
    assert marker["content_type"] == "application/json"
    assert marker["headers"] == {"X-A": "1"}
    assert marker["body"] == {"ok": True}


@pytest.mark.parametrize("spelling", ["dff", "fnhub"])
def test_a_response_that_cannot_be_encoded_fails_its_task_not_the_worker(dffdemo, spelling):
    """It used to raise out of the executor: the child died, three times, and the task ended
    as a dead letter ("worker process died")."""
    result = dffdemo.call("dffdemo.bad_resp", {"spelling": spelling}, timeout=20)
    assert (result.status, result.error_type, result.attempt) == (
        "failure",
        "ResultNotSerializable",
        1,
    )
    assert "Response whose body is not JSON-serialisable" in (result.error_message or "")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SYS_DB", "DFF.SYS_DB is not supported by fnhub: fnhub does not give scripts"),
        ("GUANCE_OPENAPI", "the Guance / TrueWatch clients are not part of fnhub"),
        ("sql", "DFF.SQL is not supported by fnhub"),
        ("SYNC_API", "managed with `fnhub.yaml`"),
    ],
)
def test_unsupported_members_fail_with_their_alternative(dffdemo, name, message):
    result = dffdemo.call("dffdemo.unsupported", {"name": name})
    assert result.status == "failure"
    assert result.error_type == "NotImplementedError"
    assert message in (result.error_message or "")


def test_unknown_members_name_the_nearest_ones(dffdemo):
    result = dffdemo.call("dffdemo.unsupported", {"name": "CACHEE"})
    assert result.error_type == "AttributeError"
    assert "DFF.CACHEE is not a DataFlux Func member fnhub knows; did you mean DFF.CACHE?" in (
        result.error_message or ""
    )


def test_cron_job_helper_outside_a_cron_job_does_nothing(dffdemo):
    assert call_ok(dffdemo, "dffdemo.cron_outside").result is None


def test_thread_pool_runs_in_the_task(dffdemo):
    assert call_ok(dffdemo, "dffdemo.threads").result == [0, 2, 4, 6]


def test_every_member_has_a_lower_case_alias_and_dunders_stay_plain():
    assert DFF.cache is DFF.CACHE and DFF.conn is DFF.CONN and DFF.src is DFF.CONN
    assert DFF.resp is DFF.RESP and DFF.api is DFF.API
    assert not hasattr(DFF, "__fnhub_api__")
    with pytest.raises(NotImplementedError, match=r"DFF\.DATAKIT is not supported"):
        _ = DFF.datakit
