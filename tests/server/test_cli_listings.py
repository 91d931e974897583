"""Every listing command against a real stack (Redis, SQLite, server and worker processes), with
long names in its data: `--json` parses; piped at 80 columns no line is wider, nothing is cut
("…"), nothing shows as None; `fnhub cron remove` of a job declared in fnhub.yaml warns."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tests.cli_commands import LISTINGS, all_commands, options_of
from tests.conftest import wait_for
from typer.testing import CliRunner

from fnhub.cli import app

from .conftest import RECORDS_SCRIPT, Stack, close_stack, make_stack

WIDTH = 80
LONG_JOB = "nightly-report-for-the-whole-organisation"
LONG_USER = "a-user-with-a-rather-long-name"
LONG_KEY = "the-key-of-the-continuous-integration-pipeline"
LONG_TOPIC = "https://feeds.example.org/orders/created-in-the-european-warehouses"
LONG_ENDPOINT = "orders-created-in-the-european-warehouses"

runner = CliRunner()
FNHUB = [sys.executable, "-c", "from fnhub.cli import main; main()"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("cli-listings"))
    try:
        with s.admin() as c:
            assert c.put("/api/v1/scripts/rec", json={"code": RECORDS_SCRIPT}).status_code == 200
            job = {"id": LONG_JOB, "function": "demo.add", "expr": "30 2 * * *"}
            r = c.post("/api/v1/cron-jobs", json={**job, "kwargs": {"a": 1, "b": 2}})
            assert r.status_code == 201, r.text
            user = {"username": LONG_USER, "password": "a-long-enough-password", "role": "viewer"}
            assert c.post("/api/v1/users", json=user).status_code == 201
            assert c.post("/api/v1/websub/topics", json={"url": LONG_TOPIC}).status_code == 201
            r = c.post("/api/v1/keys", json={"name": LONG_KEY, "role": "viewer"})
            assert r.status_code == 201, r.text
            endpoint = {"function": "demo.echo", "throttle": {"second": 10, "minute": 100}}
            r = c.put(f"/api/v1/endpoints/{LONG_ENDPOINT}", json=endpoint)
            assert r.status_code == 200, r.text
            time.sleep(2.1)  # workers re-read the active scripts at most every 2 s
            assert c.post("/api/v1/functions/demo.add/call", json={"kwargs": {"a": 1, "b": 2}})
            r = c.post("/api/v1/functions/rec.cracked/call", json={"kwargs": {"x": 7}})
            assert r.status_code == 500, r.text

            def landed() -> bool:
                items = c.get("/api/v1/tasks").json()["items"]
                return {i["function"] for i in items} >= {"demo.add", "rec.cracked"}

            wait_for(landed, timeout=20, interval=0.1)
        yield s
    finally:
        close_stack(s)


def fnhub(stack: Stack, *args: str, columns: int = WIDTH) -> str:
    """`fnhub ARGS -p <project>` in this process, its stdout not a terminal, at `columns`."""
    env = {**stack.env, "COLUMNS": str(columns)}
    result = runner.invoke(app, [*args, "-p", str(stack.dir)], env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


LISTING_ARGS = sorted(LISTINGS)


def test_every_listing_command_takes_json() -> None:
    """A listing added without --json fails here (and any new command must be classified)."""
    commands = all_commands()
    assert set(LISTINGS) <= set(commands)
    missing = [" ".join(path) for path in sorted(LISTINGS) if "--json" not in options_of(path)]
    assert not missing, f"listings without --json: {missing}"


#: what each listing's JSON must hold, proving it read this stack's data
EXPECTED = {
    ("keys", "list"): LONG_KEY,
    ("users", "list"): LONG_USER,
    ("cron", "list"): LONG_JOB,
    ("endpoints", "list"): LONG_ENDPOINT,
    ("websub", "topics"): LONG_TOPIC,
    ("tasks",): "rec.cracked",
    ("tasks", "dead"): "rec.cracked",
    ("status",): "workers",
    ("cluster",): "leading",
    ("settings",): "redis_url",
}


@pytest.mark.parametrize("path", LISTING_ARGS, ids=" ".join)
def test_json_parses(stack: Stack, path: tuple[str, ...]) -> None:
    text = fnhub(stack, *path, "--json")
    assert text.count("\n") == 1, "one line of JSON"
    data = json.loads(text)
    if path in EXPECTED:
        assert EXPECTED[path] in json.dumps(data)


@pytest.mark.parametrize("path", LISTING_ARGS, ids=" ".join)
def test_table_fits_80_columns_uncut_and_without_none(stack: Stack, path: tuple[str, ...]) -> None:
    text = fnhub(stack, *path)
    assert "…" not in text and "None" not in text, text
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, text
    if path in EXPECTED and path != ("settings",):
        assert EXPECTED[path] in text, text  # whole, not folded or cut


def test_a_real_pipe_at_80_columns(stack: Stack) -> None:
    env = {**stack.env, "COLUMNS": str(WIDTH)}
    done = subprocess.run(
        [*FNHUB, "cron", "list", "-p", str(stack.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert LONG_JOB in done.stdout and "…" not in done.stdout
    assert all(len(line) <= WIDTH for line in done.stdout.splitlines()), done.stdout


def test_narrow_tables_drop_columns_wide_ones_keep_them(stack: Stack) -> None:
    narrow = fnhub(stack, "cron", "list", columns=80).splitlines()[0].split()
    wide = fnhub(stack, "cron", "list", columns=160).splitlines()[0].split()
    assert "id" in narrow and "state" in narrow
    assert {"timezone", "next"} <= set(wide) and not {"timezone"} <= set(narrow)


def test_cron_remove_of_a_declared_job_warns_that_apply_brings_it_back(stack: Stack) -> None:
    project = stack.dir / "fnhub.yaml"
    project.write_text(
        "cron_jobs:\n  - id: declared\n    function: demo.add\n    expr: '0 3 * * *'\n"
        "    kwargs: {a: 1, b: 2}\n"
    )
    env = {**stack.env, "COLUMNS": str(WIDTH)}
    try:
        assert runner.invoke(app, ["apply", "-p", str(stack.dir)], env=env).exit_code == 0
        removed = runner.invoke(app, ["cron", "remove", "declared", "-p", str(stack.dir)], env=env)
        assert removed.exit_code == 0, removed.output
        assert "declared is declared in fnhub.yaml" in removed.stderr
        assert "`fnhub apply`" in removed.stderr and "brings it back" in removed.stderr
        assert runner.invoke(app, ["apply", "-p", str(stack.dir)], env=env).exit_code == 0
        assert "declared" in fnhub(stack, "cron", "list", "--json")  # it did come back
        added = [
            "cron",
            "add",
            "made-here",
            "demo.add",
            "0 4 * * *",
            "--kwargs",
            '{"a": 1, "b": 1}',
        ]
        assert runner.invoke(app, [*added, "-p", str(stack.dir)], env=env).exit_code == 0
        removed = runner.invoke(app, ["cron", "remove", "made-here", "-p", str(stack.dir)], env=env)
        assert removed.exit_code == 0 and "fnhub.yaml" not in removed.stderr
    finally:
        project.unlink()
