"""Settings that say no, and `fnhub settings`, through the real command line: a misspelt key in
fnhub.yaml or FNHUB_* variable refused with the nearest known name (exit 2, no traceback) by
every command; `a,b` lists; sources and masked secrets; flags over env over file; no command
writes files outside a project; --version, completion and help without `<bool>`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import redis
from tests.cli_commands import all_commands
from tests.conftest import REDIS_URL, free_port, wait_for
from typer.testing import CliRunner

from fnhub.cli import app
from fnhub.config import Settings, load_settings, setting_origins

runner = CliRunner()
FNHUB = [sys.executable, "-c", "from fnhub.cli import main; main()"]


def _clean_env(**extra: str) -> dict[str, str | None]:
    """For CliRunner: every FNHUB_* variable of this process unset, then `extra`."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("FNHUB_")}
    env.update(extra)
    return env


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(COLUMNS="80", **extra)
    return env


def fnhub(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60):
    """The real `fnhub` in a subprocess, piped (its stdout and stderr are not terminals)."""
    return subprocess.run(
        [*FNHUB, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _project(folder: Path, settings_yaml: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fnhub.yaml").write_text(f"settings:\n{settings_yaml}" if settings_yaml else "")
    return folder


# -- misspelt settings ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["serve"], ["settings", "--json"]])
def test_a_misspelt_key_in_fnhub_yaml_is_refused_naming_the_nearest(
    tmp_path: Path, command: list[str]
) -> None:
    project = _project(tmp_path / "proj", "  prot: 18499\n")
    done = fnhub(*command, "-p", str(project), cwd=tmp_path, env=_subprocess_env())
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "unknown setting 'prot'" in done.stderr and "did you mean 'port'" in done.stderr
    assert "fnhub.yaml" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("command", [["worker"], ["keys", "list"]])
def test_a_misspelt_fnhub_variable_is_refused_naming_the_nearest(
    tmp_path: Path, command: list[str]
) -> None:
    project = _project(tmp_path / "proj")
    env = _subprocess_env(FNHUB_PROCESES="2")
    done = fnhub(*command, "-p", str(project), cwd=tmp_path, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "FNHUB_PROCESES" in done.stderr and "did you mean 'FNHUB_PROCESSES'" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_refuses_a_misspelt_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command loads settings before doing anything (init before writing a file)."""
    monkeypatch.chdir(tmp_path)  # CliRunner runs in this process
    _project(tmp_path / "proj")
    env = _clean_env(FNHUB_PROCESES="2", FNHUB_PROJECT_DIR=str(tmp_path / "proj"))
    for path, args in all_commands().items():
        if path in (("import", "baetyl"), ("import", "dff")):
            continue  # converts files into a project folder; reads no settings
        result = runner.invoke(app, [*path, *args], env=env)
        assert result.exit_code == 2, (path, result.output, result.exception)
        assert "did you mean 'FNHUB_PROCESSES'" in result.stderr, (path, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # init made nothing


def test_a_bad_value_names_the_setting_and_its_source_not_a_secret(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj", "  processes: many\n")
    env = _clean_env(FNHUB_PORT="abc")
    result = runner.invoke(app, ["status", "-p", str(project)], env=env)
    assert result.exit_code == 2 and result.exception is not None
    assert "setting port (from env FNHUB_PORT)" in result.stderr and "'abc'" in result.stderr
    assert "setting processes (from fnhub.yaml)" in result.stderr
    env = _clean_env(FNHUB_WEBSUB_PUBLISHER_TOKENS='{"ci": ["hush-hush"]}')
    result = runner.invoke(app, ["settings", "-p", str(tmp_path)], env=env)
    assert result.exit_code == 2, result.output
    assert "websub_publisher_tokens" in result.stderr and "hush-hush" not in result.stderr


def test_test_harness_variables_are_no_settings_and_allowed(tmp_path: Path) -> None:
    env = _clean_env(FNHUB_TEST_ANYTHING="x", FNHUB_KEY="fnh_example", FNHUB_SKIP_CONSOLE_BUILD="1")
    result = runner.invoke(app, ["settings", "--json", "-p", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "test_anything" not in json.loads(result.stdout)


def test_keyword_arguments_are_checked_too() -> None:
    with pytest.raises(ValueError, match="did you mean 'port'"):
        load_settings(".", prot=1)
    with pytest.raises(ValueError, match="extra"):
        Settings(prot=1)  # type: ignore[call-arg]
    assert Settings(port=1, queues=["a"]).port == 1  # direct construction still works


# -- lists, layering and sources --------------------------------------------------------------
def test_list_settings_take_the_plain_form_and_json_in_env(tmp_path: Path) -> None:
    env = _clean_env(FNHUB_QUEUES="sync, reports", FNHUB_REDACT_NAMES='["X-Token", "Cookie"]')
    result = runner.invoke(app, ["settings", "--json", "-p", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["queues"] == {"value": ["sync", "reports"], "source": "env FNHUB_QUEUES"}
    assert shown["redact_names"]["value"] == ["X-Token", "Cookie"]


def test_flags_over_env_over_fnhub_yaml_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("FNHUB_")]:
        monkeypatch.delenv(name)
    project = _project(tmp_path, "  port: 18499\n  processes: 5\n  data_dir: state\n")
    monkeypatch.setenv("FNHUB_PROCESSES", "3")
    settings = load_settings(project, host="0.0.0.0")
    assert (settings.port, settings.processes, settings.host) == (18499, 3, "0.0.0.0")
    assert settings.data_dir == (project / "state").resolve()  # relative to the project
    assert load_settings(project, processes=7).processes == 7
    origins = setting_origins(project, {"host": "0.0.0.0"})
    assert origins["port"] == "fnhub.yaml"
    assert origins["processes"] == "env FNHUB_PROCESSES"
    assert origins["host"] == "flag"
    assert origins["queues"] == "default"


def test_settings_shows_sources_and_masks_secrets(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj", "  port: 18499\n")
    env = _subprocess_env(
        FNHUB_REDIS_URL="redis://:hunter2@127.0.0.1:6379/0",
        FNHUB_DB_URL="postgresql://fn:pg-pass@db.local/fnhub?sslpassword=ssl-pass",
        FNHUB_SECRET_KEY="the-secret-key",
        FNHUB_WEBSUB_PUBLISHER_TOKENS='{"ci": "publish-token"}',
        FNHUB_WEBSUB_KAFKA='{"bootstrap_servers": "k:9092", "sasl_password": "kafka-pass"}',
    )
    done = fnhub("settings", "--json", "-p", str(project), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["port"] == {"value": 18499, "source": "fnhub.yaml"}
    assert shown["processes"] == {"value": 2, "source": "default"}
    assert shown["redis_url"] == {
        "value": "redis://:*****@127.0.0.1:6379/0",
        "source": "env FNHUB_REDIS_URL",
    }
    assert shown["db_url"]["value"] == ("postgresql://fn:*****@db.local/fnhub?sslpassword=*****")
    assert shown["secret_key"]["value"] == "*****"
    assert shown["websub_publisher_tokens"]["value"] == {"ci": "*****"}
    assert shown["websub_kafka"]["value"]["sasl_password"] == "*****"
    assert shown["project_dir"]["source"] == "flag --project"
    table = fnhub("settings", "-p", str(project), cwd=tmp_path, env=env)
    for text in (done.stdout, table.stdout):
        for secret in ("hunter2", "pg-pass", "ssl-pass", "the-secret-key", "publish-token"):
            assert secret not in text
        assert "kafka-pass" not in text
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in table.stdout
    assert any(line.split()[:1] == ["port"] and "fnhub.yaml" in line for line in lines)


# -- outside a project ------------------------------------------------------------------------
def test_no_command_writes_files_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command run in an empty folder either works without writing anything (settings)
    or says it needs a project; the folder stays empty."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    env = _clean_env()
    works_anywhere = {("settings",), ("import", "baetyl"), ("import", "dff")}
    for path, args in all_commands().items():
        if path == ("init",):
            continue  # makes a project: that is its job
        result = runner.invoke(app, [*path, *args], env=env, input="pw\n")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            path,
            result.exception,
        )
        if path in works_anywhere:
            assert result.exit_code in (0, 2), (path, result.output)
        else:
            assert result.exit_code == 2, (path, result.output)
            assert "no fnhub project here (no fnhub.yaml in" in result.stderr, path
            assert "fnhub init" in result.stderr
        assert list(empty.iterdir()) == [], (path, list(empty.iterdir()))


def test_outside_a_project_a_chosen_data_dir_or_remote_services_are_fine(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    remote = _clean_env(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_DB_URL=f"sqlite:///{tmp_path / 'elsewhere.db'}",
        FNHUB_KEY_PREFIX=f"t{uuid.uuid4().hex[:10]}",
    )
    result = runner.invoke(app, ["keys", "list", "--json", "-p", str(empty)], env=remote)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [] and list(empty.iterdir()) == []
    chosen = _clean_env(FNHUB_DATA_DIR=str(tmp_path / "data"))
    result = runner.invoke(app, ["users", "list", "--json", "-p", str(empty)], env=chosen)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "fnhub.db").exists() and list(empty.iterdir()) == []


# -- the roles' flags -------------------------------------------------------------------------
@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_serve_port_and_host_flags_win_over_env(tmp_path: Path, prefix: str) -> None:
    env = _subprocess_env(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=prefix,
        FNHUB_PORT=str(free_port()),  # the flag wins over this
        FNHUB_SHUTDOWN_GRACE_SECONDS="0.5",
    )
    project = tmp_path / "proj"
    done = fnhub("init", str(project), cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    port = free_port()
    flags = ["--port", str(port), "--host", "127.0.0.1", "--processes", "1", "-p", str(project)]
    serve = subprocess.Popen(
        [*FNHUB, "serve", *flags],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def up() -> bool:
            assert serve.poll() is None, serve.stderr.read().decode()  # type: ignore[union-attr]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=90, interval=0.2)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{env['FNHUB_PORT']}/healthz", timeout=1)
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


# -- version, completion, help ----------------------------------------------------------------
def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"fnhub {version('fnhub')}"


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
    shown = runner.invoke(app, ["--show-completion", "bash"])
    assert shown.exit_code == 0 and "complete" in shown.stdout


@pytest.mark.parametrize("path", sorted(all_commands()))
def test_help_shows_no_type_beside_flags(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_a_folder_with_scripts_is_a_project_without_fnhub_yaml(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    result = runner.invoke(app, ["users", "list", "--json", "-p", str(tmp_path)], env=_clean_env())
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".fnhub" / "fnhub.db").exists()
