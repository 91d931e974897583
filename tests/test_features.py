"""The feature list (`fnhub.features.FEATURES`) is the whole of how features attach: the server,
`apply_project`, the CLI and Alembic all take it, and a feature that is missing or misspelt
stops fnhub at import instead of silently dropping out."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from typer import _click as click

import fnhub
from fnhub.cli import app as cli_app
from fnhub.cli_lazy import LazyGroup, load
from fnhub.feature import CliCommand, CliGroup, Feature, ServerParts, resolve
from fnhub.features import FEATURES
from fnhub.server.app import create_app
from fnhub.server.context import ServerContext
from fnhub.store.all_models import MODEL_MODULES, metadata

PACKAGE = Path(fnhub.__file__).parent
FEATURES_SOURCE = (PACKAGE / "features.py").read_text()


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run by a new interpreter that sees only fnhub (what it imports is its own)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"},
    )


def _import_copy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "copied_features.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-c", "import copied_features"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        # no bytecode: the misspelt copy has the same size, and written within the same second
        # as the first its cached bytecode would pass for it
        env={
            "PYTHONPATH": f"{tmp_path}:{PACKAGE.parent}",
            "PATH": "/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )


def test_a_misspelt_feature_fails_at_import(tmp_path: Path) -> None:
    assert _import_copy(tmp_path, FEATURES_SOURCE).returncode == 0  # the list as it is
    misspelt = FEATURES_SOURCE.replace("fnhub.websub.feature import", "fnhub.websub.featuer import")
    assert misspelt != FEATURES_SOURCE
    done = _import_copy(tmp_path, misspelt)
    assert done.returncode != 0
    assert "ModuleNotFoundError: No module named 'fnhub.websub.featuer'" in done.stderr


def test_every_feature_module_is_in_the_list() -> None:
    """A package that defines a feature but is left out of FEATURES would be dead code."""
    defined = {
        path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for path in [*PACKAGE.glob("*/feature.py"), *PACKAGE.glob("*/*_feature.py")]
    }
    listed = {f"{type(f).__module__}" for f in FEATURES}  # Feature itself lives in fnhub.feature
    assert listed == {"fnhub.feature"}
    imported = {
        line.split()[1].removeprefix("fnhub.")
        for line in FEATURES_SOURCE.splitlines()
        if line.startswith("from fnhub.") and line.split()[1] != "fnhub.feature"
    }
    assert imported == defined
    assert len({f.name for f in FEATURES}) == len(FEATURES)
    assert all(isinstance(f, Feature) for f in FEATURES)


def _paths(app: FastAPI) -> set[str]:
    return set(app.openapi()["paths"])


def _documented(router: APIRouter, prefix: str) -> set[str]:
    return {
        prefix + r.path for r in router.routes if isinstance(r, APIRoute) and r.include_in_schema
    }


def test_the_server_mounts_every_router_of_every_feature(settings) -> None:  # type: ignore[no-untyped-def]
    paths = _paths(create_app(settings))
    for feature in FEATURES:
        parts = feature.server()
        for router in parts.routers:
            assert _documented(router, "/api/v1") <= paths, feature.name
        for router in parts.public_routers:
            assert _documented(router, "") <= paths, feature.name
    assert "/api/v1/cron-jobs" in paths and "/websub/hub" in paths
    assert "/api/v1/subscriptions" in paths


def test_a_server_without_a_feature_lacks_only_its_routes(settings) -> None:  # type: ignore[no-untyped-def]
    without = [f for f in FEATURES if f.name != "cron"]
    paths = _paths(create_app(settings, features=without))
    assert "/api/v1/cron-jobs" not in paths
    assert "/websub/hub" in paths and "/api/v1/functions" in paths


def test_alembic_and_the_cli_see_every_feature() -> None:
    for feature in FEATURES:
        for name in feature.models:
            assert importlib.import_module(name) in MODEL_MODULES
    assert {"cron_jobs", "subscriptions", "websub_topics", "endpoints"} <= set(metadata.tables)
    root = typer.main.get_command(cli_app)
    ctx = click.Context(root)
    for feature in FEATURES:
        for entry in feature.cli:
            assert entry.name in root.list_commands(ctx)
            command = root.get_command(ctx, entry.name)
            assert hasattr(command, "commands") == isinstance(entry, CliGroup), entry
            assert isinstance(entry, CliGroup | CliCommand)


def test_every_name_a_feature_gives_resolves() -> None:
    """Features name their parts ("module:attribute"); a misspelt one fails here, not when a
    user first runs that command or applies that section."""
    for feature in FEATURES:
        for _section, target in feature.sections:
            assert callable(resolve(target)), target
        for name in feature.models:
            assert importlib.import_module(name) in MODEL_MODULES
        for entry in feature.cli:
            assert resolve(entry.target) is not None, entry


def test_the_root_help_lists_lazy_commands_with_their_own_help() -> None:
    """`fnhub --help` shows each lazy entry's line without importing it: the line must be the
    command's own."""
    root = typer.main.get_command(cli_app)
    assert isinstance(root, LazyGroup)
    for entry in root.entries:
        command = load(entry)
        own = command.short_help or (command.help or "").strip().split("\n")[0]
        assert entry.help == own, entry.name


def test_services_take_the_typed_context() -> None:
    for feature in FEATURES:
        for service in feature.server().services:
            assert service.__annotations__["ctx"] in ("ServerContext", ServerContext)


def test_a_misspelt_server_side_fails_before_the_server_starts(settings) -> None:  # type: ignore[no-untyped-def]
    """`Feature.server` imports a feature's routes; create_app calls every one of them."""

    def misspelt() -> ServerParts:
        from fnhub.cron import arae  # type: ignore[attr-defined]  # noqa: F401

        raise AssertionError("unreachable")

    broken = Feature(name="cron", server=misspelt)
    with pytest.raises(ImportError, match="arae"):
        create_app(settings, features=[*FEATURES, broken])


def test_the_command_line_does_not_load_the_server() -> None:
    """Every `fnhub` command imports the feature list; the server side stays out of it."""
    done = _fresh_python("import sys, fnhub.cli; print('fastapi' in sys.modules)")
    assert done.stdout.strip() == "False", done.stderr


def test_the_root_help_imports_no_command_group_nor_sqlalchemy() -> None:
    """`fnhub --help` (and `fnhub server`) import only the commands they run: no feature's or
    other group's CLI module, no SQLAlchemy (0.3 s of CPU on its own)."""
    wanted = "m == 'sqlalchemy' or m.startswith('fnhub') and m.endswith(('.cli', '_cli'))"
    code = f"import sys, fnhub.cli\nprint(sorted(m for m in sys.modules if {wanted}))"
    done = _fresh_python(code)
    assert done.stdout.strip() == "['fnhub.cli']", done.stdout + done.stderr


def test_calling_does_not_import_the_http_server() -> None:
    """Subscriptions, cron and the CLI call functions through `fnhub.calling` without the
    HTTP package: its errors are `CallError`, never the server's `ApiError`."""
    code = (
        "import sys, fnhub.calling.caller, fnhub.calling.queue_client, fnhub.calling.maker\n"
        "print(sorted(m for m in sys.modules if m.startswith('fnhub.server') or m == 'fastapi'))"
    )
    done = _fresh_python(code)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
