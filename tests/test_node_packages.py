"""The project's npm packages: `npm ci` from the lock into the data folder at apply, published in
Redis so a worker on another machine installs the same, and refused with the reason when they
cannot install. Real npm, offline: the dependency is a tarball made here with `npm pack`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.node.packages import (
    PackagesError,
    install_folder,
    installed_modules,
    published,
    read_project,
    sync_project,
)


def _tarball(folder: Path, version: str = "1.0.0") -> Path:
    """A tiny npm package as `npm pack` makes it: what a registry would serve."""
    src = folder / f"dep-src-{version}"
    src.mkdir(parents=True)
    (src / "package.json").write_text(
        json.dumps({"name": "fnhub-test-dep", "version": version, "main": "index.js"})
    )
    (src / "index.js").write_text(f"exports.version = {version!r};\n")
    out = subprocess.run(
        ["npm", "pack", "--silent", "--pack-destination", str(folder)],
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / out.stdout.strip().splitlines()[-1]


def _project(project: Path, tarball: Path) -> None:
    """package.json naming the tarball by absolute path, and the lock `npm install` makes."""
    (project / "package.json").write_text(
        json.dumps(
            {"name": "proj", "private": True, "dependencies": {"fnhub-test-dep": f"file:{tarball}"}}
        )
    )
    subprocess.run(
        ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
        cwd=project,
        capture_output=True,
        check=True,
    )


def _client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def test_a_package_json_without_its_lock_is_refused_with_what_to_do(settings: Settings) -> None:
    (settings.project_dir / "package.json").write_text('{"name": "p"}')
    with pytest.raises(PackagesError, match=r"no package-lock\.json.*npm install.*npm ci"):
        read_project(settings.project_dir)


def test_apply_installs_from_the_lock_and_another_machine_installs_the_same(
    settings: Settings, tmp_path: Path
) -> None:
    _project(settings.project_dir, _tarball(tmp_path / "packs"))
    client, keys = _client(settings), Keys(settings.key_prefix)
    modules = sync_project(settings, client, keys)
    assert modules is not None
    assert (modules / "fnhub-test-dep" / "index.js").read_text() == "exports.version = '1.0.0';\n"
    assert modules.is_relative_to(settings.data_dir)
    expected = read_project(settings.project_dir)
    assert expected is not None
    assert published(client, keys) == expected
    again = sync_project(settings, client, keys)  # unchanged lock: the same install, kept
    assert again == modules

    other = settings.model_copy(update={"data_dir": tmp_path / "other-machine"})
    there = installed_modules(other, client, keys)  # from Redis alone, not the project folder
    assert there is not None and there != modules
    assert (there / "fnhub-test-dep" / "index.js").is_file()


def test_a_new_lock_installs_beside_the_old_one(settings: Settings, tmp_path: Path) -> None:
    client, keys = _client(settings), Keys(settings.key_prefix)
    _project(settings.project_dir, _tarball(tmp_path / "v1"))
    first = sync_project(settings, client, keys)
    _project(settings.project_dir, _tarball(tmp_path / "v2", "2.0.0"))
    second = sync_project(settings, client, keys)
    assert first is not None and second is not None and first != second
    assert (second / "fnhub-test-dep" / "index.js").read_text() == "exports.version = '2.0.0';\n"
    assert (first / "fnhub-test-dep").is_dir()  # the old one keeps serving until the switch


def test_a_lock_npm_refuses_publishes_nothing(settings: Settings, tmp_path: Path) -> None:
    client, keys = _client(settings), Keys(settings.key_prefix)
    _project(settings.project_dir, _tarball(tmp_path / "packs"))
    package = json.loads((settings.project_dir / "package.json").read_text())
    package["dependencies"]["left-pad"] = "1.3.0"  # added without updating the lock
    (settings.project_dir / "package.json").write_text(json.dumps(package))
    with pytest.raises(PackagesError, match=r"`npm ci` failed \(exit code \d+\):.*in sync"):
        sync_project(settings, client, keys)
    assert published(client, keys) is None
    packages = read_project(settings.project_dir)
    assert packages is not None
    assert not install_folder(settings, packages).exists()  # no half install left to reuse


def test_removing_package_json_unpublishes_the_packages(settings: Settings, tmp_path: Path) -> None:
    client, keys = _client(settings), Keys(settings.key_prefix)
    _project(settings.project_dir, _tarball(tmp_path / "packs"))
    sync_project(settings, client, keys)
    (settings.project_dir / "package.json").unlink()
    assert sync_project(settings, client, keys) is None
    assert published(client, keys) is None
    assert installed_modules(settings, client, keys) is None
