"""`fnhub serve` and a machine without a usable Node: said once at start-up, not per task.

Node is made missing with `node_path` pointing at nothing (the machine's own `node` stays where it
is); a project whose scripts/ holds JavaScript is refused before anything starts, and published
JavaScript the project does not hold is named in a warning while serve goes on."""

from __future__ import annotations

import time
from pathlib import Path

from tests.project_cli import drop_keys, fnhub, shared_redis_env, start_serve, stop, wait_ready

JS = "exports.hi = async () => 'hi';\n"


def test_javascript_in_the_project_without_node_stops_serve_with_the_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "hello.js").write_text(JS)
    env = shared_redis_env(tmp_path)
    env["FNHUB_NODE_PATH"] = str(tmp_path / "no-such-node")
    try:
        serve = start_serve(tmp_path, env)
        assert serve.wait(60) == 1
        said = (tmp_path / "serve.log").read_text()
        assert "cannot publish JavaScript" in said
        assert "no-such-node" in said and "is not an executable file" in said
        assert "fix it, then start `fnhub serve` again" in said
    finally:
        drop_keys(env)


def test_published_javascript_without_node_is_named_at_start_up(tmp_path: Path) -> None:
    env = shared_redis_env(tmp_path)
    (tmp_path / "fnhub.yaml").write_text("{}\n")  # a project without scripts/: it leaves
    try:  # published scripts alone
        other = tmp_path / "elsewhere"  # published from another project, through the API's path
        (other / "scripts").mkdir(parents=True)
        (other / "scripts" / "greeter.js").write_text(JS)
        env_other = {**env, "FNHUB_PROJECT_DIR": str(other)}
        applied = fnhub("apply", "-p", str(other), cwd=other, env=env_other)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        env["FNHUB_NODE_PATH"] = str(tmp_path / "no-such-node")
        serve = start_serve(tmp_path, env)
        try:
            wait_ready(serve, env)
            time.sleep(0.5)
            said = (tmp_path / "serve.log").read_text()
            assert "JavaScript scripts are published (greeter)" in said
            assert "Their tasks fail here with NodeUnavailable" in said
        finally:
            stop(serve)
    finally:
        drop_keys(env)
