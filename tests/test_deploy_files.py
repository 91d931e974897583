"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/systemd/) name commands, options
and settings that exist, and the image's HEALTHCHECK (`fnhub.healthcheck`) tells a live role from
a dead one, against real processes. Building and running the image is deploy/check-image.sh
(minutes, and a Docker engine): not part of the suite; docs/deploy.md says what was verified and
how."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import free_port, wait_for
from typer.testing import CliRunner

from fnhub import healthcheck
from fnhub.cli import app
from fnhub.config import Settings, load_settings, unknown_env_names

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))


def assert_fnhub_command(args: list[str]) -> None:
    """`fnhub <args> --help` exits 0: the subcommand exists and takes every option given (an
    unknown option fails the parse before --help is acted on)."""
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"fnhub {shlex.join(args)}: {result.output}"


def assert_settings_load(environ: dict[str, str]) -> None:
    """Every FNHUB_* name is a setting and its value one the setting takes."""
    names = [n for n in environ if n.startswith("FNHUB_")]
    assert unknown_env_names(names, Settings.model_fields) == []
    saved = dict(os.environ)
    try:
        os.environ.update(environ)
        load_settings(Path("/nonexistent-project"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                lines.append((word.upper(), rest.strip()))
            current = ""
    return lines


def exec_form(instructions: list[tuple[str, str]], name: str) -> list[str]:
    (args,) = [a for word, a in instructions if word == name]
    return json.loads(args)


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_entrypoint_default_role_and_healthcheck_exist() -> None:
    instructions = dockerfile_instructions()
    entrypoint = exec_form(instructions, "ENTRYPOINT")
    assert entrypoint[-1] == "fnhub" and entrypoint[0] == "tini"
    assert_fnhub_command(exec_form(instructions, "CMD"))
    (check,) = [a for word, a in instructions if word == "HEALTHCHECK"]
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command == ["python", "-m", "fnhub.healthcheck"]
    assert [a for word, a in instructions if word == "USER"] == ["fnhub:fnhub"]


def test_dockerfile_copies_what_dockerignore_lets_through_and_sets_real_settings() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, args in dockerfile_instructions():
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is left out by .dockerignore"
        if word == "ENV":
            pairs = dict(p.split("=", 1) for p in shlex.split(args))
            assert_settings_load({k: v for k, v in pairs.items() if k.startswith("FNHUB_")})


# --- compose ----------------------------------------------------------------------------------


def compose_services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_commands_are_fnhub_subcommands() -> None:
    services = compose_services()
    fnhub_services = {n: s for n, s in services.items() if "fnhub" in s.get("image", "")}
    roles = [s["command"][0] for s in fnhub_services.values()]
    for role in ("server", "worker", "beat"):
        assert roles.count(role) == 2, roles
    for name, service in fnhub_services.items():
        assert service["build"]["dockerfile"] == "Dockerfile", name
        assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").is_file()
        assert_fnhub_command(service["command"])
    assert {"redis", "postgres"} <= set(services)


def test_compose_environment_is_settings_fnhub_takes() -> None:
    for name, service in compose_services().items():
        if "fnhub" not in service.get("image", ""):
            continue
        environ = {k: str(v) for k, v in service["environment"].items()}
        assert environ["FNHUB_REDIS_URL"].startswith("redis://redis:"), name
        assert environ["FNHUB_DB_URL"].startswith("postgresql+psycopg://"), name
        # the values as compose would interpolate them with FNHUB_SECRET_KEY set
        environ = {k: v.replace("${FNHUB_SECRET_KEY:?", "x${") for k, v in environ.items()}
        environ = {k: v.split("${", 1)[0] or "text" for k, v in environ.items()}
        assert_settings_load(environ)


# --- systemd ----------------------------------------------------------------------------------


def unit_entries(path: Path) -> list[tuple[str, str]]:
    return [
        (key.strip(), value.strip())
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith(("#", "["))
        for key, _, value in [line.partition("=")]
    ]


def test_units_start_fnhub_subcommands_hardened() -> None:
    assert {u.name for u in UNITS} == {
        "fnhub-server.service",
        "fnhub-worker@.service",
        "fnhub-beat.service",
    }
    for unit in UNITS:
        entries = unit_entries(unit)
        values = dict(entries)
        binary, *args = shlex.split(values["ExecStart"])
        assert binary == "/opt/fnhub/bin/fnhub", unit.name
        assert_fnhub_command(args)
        for key, want in {
            "User": "fnhub",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "PrivateTmp": "yes",
            "StateDirectory": "fnhub",
            "Restart": "always",
            "EnvironmentFile": "/etc/fnhub/fnhub.env",
        }.items():
            assert values.get(key) == want or (key, want) in entries, (unit.name, key)


def test_env_file_holds_settings_fnhub_takes() -> None:
    environ = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "fnhub.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {"FNHUB_REDIS_URL", "FNHUB_DB_URL", "FNHUB_SECRET_KEY"} <= set(environ)
    assert_settings_load(environ)


# --- the HEALTHCHECK, against real roles -------------------------------------------------------


def test_role_and_options_from_a_command_line() -> None:
    argv = ["tini", "--", "fnhub", "server", "--workers", "2", "--port=9000"]
    assert healthcheck.role_of(argv) == "server"
    assert healthcheck.option_of(argv, "--port") == "9000"
    assert healthcheck.option_of(["fnhub", "serve", "--port", "81"], "--port") == "81"
    assert healthcheck.role_of(["python", "-m", "fnhub.healthcheck"]) is None


def role_env(settings: Settings) -> dict[str, str]:
    return {
        "FNHUB_REDIS_URL": settings.redis_url,
        "FNHUB_DB_URL": settings.db_url,
        "FNHUB_KEY_PREFIX": settings.key_prefix,
        "FNHUB_DATA_DIR": str(settings.data_dir),
        "FNHUB_SECRET_KEY": "test-secret",
        "FNHUB_HEARTBEAT_SECONDS": "0.5",
    }


def run_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK command as the image runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "fnhub.healthcheck", *args],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_role(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", *args],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path)},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def role_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The roles' environment, also set in this process so `healthcheck.main` polls cheaply
    (the subprocess runs prove the `python -m` path)."""
    env = role_env(settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.mark.timeout(300)  # a role's start-up takes a minute on a loaded 2-core machine
def test_healthcheck_follows_a_real_server(role_settings: dict[str, str], tmp_path: Path) -> None:
    port = str(free_port())
    down = run_check(role_settings, "server", "--port", port)
    assert down.returncode == 1 and "unhealthy" in down.stderr
    server = start_role(role_settings, tmp_path, "server", "--port", port)
    try:
        wait_for(lambda: healthcheck.main(["server", "--port", port]) == 0, 120, 0.5)
        assert run_check(role_settings, "server", "--port", port).returncode == 0
    finally:
        stop(server)
    assert healthcheck.main(["server", "--port", port]) == 1


@pytest.mark.timeout(300)
def test_healthcheck_follows_a_real_worker_and_beat(
    role_settings: dict[str, str], tmp_path: Path
) -> None:
    assert healthcheck.main(["worker"]) == 1
    assert "no live beat of host" in run_check(role_settings, "beat").stderr
    worker = start_role(role_settings, tmp_path, "worker", "--processes", "1")
    beat = start_role(role_settings, tmp_path, "beat")
    try:
        wait_for(lambda: healthcheck.main(["worker"]) == 0, 120, 0.5)
        wait_for(lambda: healthcheck.main(["beat"]) == 0, 120, 0.5)
        assert run_check(role_settings, "worker").returncode == 0
    finally:
        stop(worker)
        stop(beat)
    wait_for(lambda: healthcheck.main(["worker"]) == 1, 30, 0.5)  # its heartbeat lapsed
    assert healthcheck.main(["beat"]) == 1  # a stopping beat leaves the beats at once


def test_healthcheck_without_a_role_is_unhealthy() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from fnhub import healthcheck as h; sys.exit(h.main(['--port', '1']))",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "no role" in done.stderr
