"""Finding the console's built files and the precompressed copy a client can take.

The build writes a `.br` and a `.gz` beside every asset, so the server sends bytes as they
are and spends no CPU compressing per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ASSET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
#: preferred first; the file suffix each encoding is stored under
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


@dataclass(frozen=True)
class Found:
    path: Path
    encoding: str | None  # the Content-Encoding of `path`, None for the plain file


def accepted_encodings(header: str) -> set[str]:
    """Codings named in an Accept-Encoding header, leaving out those with q=0."""
    names = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = params.replace(" ", "").lower()
        if name and q not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            names.add(name.strip().lower())
    return names


class ConsoleFiles:
    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.root = root
        self.assets = root / "assets"
        self._index: tuple[float, str] | None = None

    @property
    def built(self) -> bool:
        return (self.root / "index.html").is_file()

    def asset(self, name: str, accept_encoding: str) -> Found | None:
        """An asset by its (hashed) file name; None for unknown or unsafe names."""
        if not ASSET_NAME.match(name) or name.startswith(".") or name.endswith((".br", ".gz")):
            return None
        return self._pick(self.assets / name, accept_encoding)

    def index_template(self) -> str | None:
        """index.html as text (re-read when the build replaces it); None when not built."""
        path = self.root / "index.html"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        if self._index is None or self._index[0] != mtime:
            self._index = (mtime, path.read_text(encoding="utf-8"))
        return self._index[1]

    @staticmethod
    def _pick(path: Path, accept_encoding: str) -> Found | None:
        if not path.is_file():
            return None
        accepted = accepted_encodings(accept_encoding)
        for encoding, suffix in ENCODINGS:
            variant = path.with_name(path.name + suffix)
            if encoding in accepted and variant.is_file():
                return Found(variant, encoding)
        return Found(path, None)
