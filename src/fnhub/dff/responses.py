"""`DFF.RESP`, `DFF.RESP_FILE`, `DFF.RESP_LARGE_DATA`, `DFF.REDIRECT`: `fnhub.Response`s.

Each is a `fnhub.Response` subclass built from DataFlux Func's arguments, so the worker and
the endpoints treat it exactly like one a script made itself. Results are bounded by the
`result_max_bytes` setting (1 MB by default), files included.
"""

from __future__ import annotations

import mimetypes
import os
import urllib.parse
from pathlib import Path
from typing import Any

from fnhub import runtime
from fnhub.response import Response

#: DataFlux Func's short content types (Express's `res.type`)
SHORT_TYPES = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "xml": "application/xml",
    "csv": "text/csv; charset=utf-8",
    "js": "application/javascript",
    "css": "text/css",
}


def content_type_of(short: str | None) -> str | None:
    """`json`, `html`, `.png`... as a media type; a full media type stays as it is."""
    if not short or "/" in short:
        return short
    short = short.lstrip(".").lower()
    return SHORT_TYPES.get(short) or mimetypes.guess_type(f"x.{short}")[0] or short


def resource_root() -> Path:
    """DataFlux Func's resource folder: `<data_dir>/resources` of the worker."""
    return Path(runtime.settings().data_dir) / "resources"


def resource_path(file_path: str) -> str:
    """`DFF.RSRC(path)`: a path under the resource folder."""
    return str(resource_root() / file_path.lstrip("/"))


class DFFResponse(Response):
    """`DFF.RESP(data, status_code, content_type, headers, allow_304, download)`."""

    def __init__(
        self,
        data: Any = None,
        status_code: int | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        allow_304: bool = False,
        download: bool | str = False,
    ) -> None:
        filename = None
        if download:
            filename = (
                download
                if isinstance(download, str)
                else ("api-resp.json" if isinstance(data, dict | list) else "api-resp.txt")
            )
        out_headers = dict(headers or {})  # `allow_304`: fnhub never answers 304 to a call
        super().__init__(
            data,
            status=status_code or 200,
            headers=out_headers,
            content_type=content_type_of(content_type),
            filename=filename,
        )


class DFFResponseFile(Response):
    """`DFF.RESP_FILE(file_path, status_code, headers, allow_304, auto_delete, download)`: a
    file of the resource folder (`DFF.RSRC`), read by the worker into the response."""

    def __init__(
        self,
        file_path: str,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        allow_304: bool = False,
        auto_delete: bool = False,
        download: bool | str = True,
    ) -> None:
        path = Path(resource_path(file_path))
        if not path.is_file():
            raise FileNotFoundError(f"No such file in Resource folder: {file_path}")
        body = path.read_bytes()
        if auto_delete:
            os.remove(path)
        name = download if isinstance(download, str) else path.name
        out_headers = dict(headers or {})  # `allow_304`: fnhub never answers 304 to a call
        super().__init__(
            body,
            status=status_code or 200,
            headers=out_headers,
            content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            filename=name if download is not False else None,
        )


class DFFResponseLargeData(Response):
    """`DFF.RESP_LARGE_DATA(data, content_type)`: an ordinary response in fnhub (no temporary
    file), under the same size limit as any result."""

    def __init__(self, data: Any, content_type: str | None = None) -> None:
        if not content_type:
            content_type = "json" if isinstance(data, dict | list | tuple) else "txt"
        super().__init__(
            data
            if isinstance(data, str | bytes)
            else list(data)
            if isinstance(data, tuple)
            else data,
            content_type=content_type_of(content_type),
        )


class DFFRedirect(Response):
    """`DFF.REDIRECT(url)`: 302 to `url` (non-ASCII characters quoted, as DataFlux Func does)."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str):
            raise TypeError(f"URL should be a str, not {type(url)}")
        quoted = "".join(c if len(c.encode()) == 1 else urllib.parse.quote(c) for c in url)
        super().__init__(
            f'<a href="{quoted}">Redirect</a>',
            status=302,
            headers={"Location": quoted},
            content_type="text/html; charset=utf-8",
        )
