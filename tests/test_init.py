"""`fnhub init`'s first admin API key: its file is readable by its owner only, at every moment."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fnhub import cli
from fnhub.private_file import write_private


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: new files are world-readable unless asked otherwise
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Every os.open call (path, flags, mode), passed on to the real one."""
    calls: list[tuple[str, int, int]] = []
    real = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        calls.append((os.fspath(path), flags, mode))
        return real(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return calls


def _created(calls: list[tuple[str, int, int]], folder: Path) -> list[tuple[str, int, int]]:
    return [c for c in calls if Path(c[0]).parent == folder and c[1] & os.O_CREAT]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_the_key_file_0600_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None, opened: list
) -> None:
    for name in list(os.environ):
        if name.startswith("FNHUB_"):
            monkeypatch.delenv(name)
    project = tmp_path / "demo"
    cli.init(project)
    key_file = project / ".fnhub" / "api_key"
    assert key_file.read_text().startswith("fnh_") and _mode(key_file) == 0o600
    # the file that became api_key was created new, exclusively, with mode 0600: there was no
    # moment when its mode was the umask's 0644
    [(path, flags, mode)] = [c for c in _created(opened, key_file.parent) if "api_key" in c[0]]
    assert flags & os.O_EXCL and mode == 0o600
    assert not Path(path).exists()  # renamed into place
    assert sorted(p.name for p in key_file.parent.iterdir() if "api_key" in p.name) == ["api_key"]


def test_write_private_replaces_a_readable_file_without_widening_the_new_one(
    tmp_path: Path, umask_022: None, opened: list
) -> None:
    old = tmp_path / "api_key"
    old.write_text("old\n")
    assert _mode(old) == 0o644
    write_private(old, "new\n")
    assert old.read_text() == "new\n" and _mode(old) == 0o600
    [(_path, flags, mode)] = _created(opened, tmp_path)
    assert flags & os.O_EXCL and mode == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["api_key"]


def test_init_creates_the_admin_password_file_0600_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None, opened: list
) -> None:
    for name in list(os.environ):
        if name.startswith("FNHUB_"):
            monkeypatch.delenv(name)
    project = tmp_path / "demo"
    cli.init(project)
    password_file = project / ".fnhub" / "admin_password"
    assert len(password_file.read_text().strip()) >= 16 and _mode(password_file) == 0o600
    created = [c for c in _created(opened, password_file.parent) if "admin_password" in c[0]]
    [(_path, flags, mode)] = created
    assert flags & os.O_EXCL and mode == 0o600
    cli.init(project)  # the admin exists: the file is neither rewritten nor replaced
    assert len([c for c in _created(opened, password_file.parent) if "admin_password" in c[0]]) == 1
