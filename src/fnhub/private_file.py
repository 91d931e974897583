"""Files only their owner may read (the first admin API key): mode 0600 from their first byte."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only at every moment.

    `mkstemp` creates a new file beside `path` with `O_CREAT | O_EXCL` and mode 0600 (no umask
    can widen that, and no existing file or symlink is reused); the data goes there, then one
    rename puts it in place. Writing then chmod-ing left a window in which the file had the
    umask's mode (0644: world-readable), and an older file is never rewritten in place."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
