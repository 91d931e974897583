"""The generated secret key: one per installation, even when its processes start together."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path
from typing import Any

from fnhub.config import Settings
from fnhub.secret_box import SecretBox, resolve_secret_key


def _resolve(data_dir: str, start: Any) -> str:
    start.wait()
    return resolve_secret_key(Settings(project_dir=data_dir, data_dir=data_dir))


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        data_dir = tmp_path / f"data{attempt}"
        start = ctx.Manager().Event()
        with ctx.Pool(8) as pool:
            pending = [pool.apply_async(_resolve, (str(data_dir), start)) for _ in range(8)]
            start.set()
            keys = {p.get(timeout=30) for p in pending}
        assert len(keys) == 1, keys
        path = data_dir / "secret_key"
        assert path.read_text().strip() == keys.pop()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in data_dir.iterdir()] == ["secret_key"], "a temporary file was left"


def test_a_stored_key_is_reused_and_an_explicit_one_wins(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, data_dir=tmp_path)
    first = resolve_secret_key(settings)
    assert resolve_secret_key(settings) == first
    explicit = settings.model_copy(update={"secret_key": "configured"})
    assert resolve_secret_key(explicit) == "configured"
    sealed = SecretBox(first).encrypt("pw")
    assert SecretBox(resolve_secret_key(settings)).decrypt(sealed) == "pw"
