"""Serving the console: hashed assets under `/assets/` (cached for a year), and `index.html` for
any other page a browser asks for (the app routes in the browser), with a Content Security Policy
that allows no inline script, so text from the data can never run as code. Each page gets a fresh
nonce that only the editor's style element carries (CodeMirror injects its styles).

Only requests that no API route answered reach the page fallback, and never under the server's
own prefixes (`/api`, `/e/`, `/websub`, ...): those keep their JSON 404.
"""

from __future__ import annotations

import mimetypes
import secrets
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fnhub.console.files import ConsoleFiles, Found

RESERVED: tuple[str, ...] = (
    "/api/",
    "/e/",
    "/websub",
    "/metrics",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
)
RESERVED += ("/redoc", "/assets/")
IMMUTABLE = "public, max-age=31536000, immutable"
NONCE_MARK = "__CSP_NONCE__"


def csp(nonce: str | None = None) -> str:
    """No inline script at all; inline style only from the editor's nonce-carrying element."""
    style = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return (
        f"default-src 'self'; script-src 'self'; style-src {style}; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


def security_headers(nonce: str | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp(nonce),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


NOT_BUILT = (
    "The fnhub console is not built. Build it with `npm ci && npm run build` in console/ "
    "(`pip install .` does this), then restart the server.\n"
)


def _file(found: Found, name: str, cache: str) -> Response:
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type == "application/javascript":
        media_type += "; charset=utf-8"
    headers = {**security_headers(), "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if found.encoding:
        headers["Content-Encoding"] = found.encoding
    return FileResponse(found.path, media_type=media_type, headers=headers)


def is_page_request(method: str, path: str, accept: str) -> bool:
    """A browser navigating to one of the app's pages (not an API client, not a missing file)."""
    if method not in ("GET", "HEAD") or path.startswith(RESERVED) or path in ("/api", "/e"):
        return False
    return path == "/" or "text/html" in accept


class PageFallback:
    """The router's not-found handler: the app's index.html for page requests, else the
    previous handler (fnhub's JSON 404)."""

    def __init__(self, files: ConsoleFiles, otherwise: ASGIApp) -> None:
        self.files = files
        self.otherwise = otherwise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            if is_page_request(request.method, request.url.path, request.headers.get("accept", "")):
                await self.page(request)(scope, receive, send)
                return
        await self.otherwise(scope, receive, send)

    def page(self, request: Request) -> Response:
        template = self.files.index_template()
        if template is None:
            return PlainTextResponse(NOT_BUILT, status_code=503, headers=security_headers())
        nonce = secrets.token_urlsafe(18)
        headers = {**security_headers(nonce), "Cache-Control": "no-store"}
        body = template.replace(NONCE_MARK, nonce)
        return HTMLResponse(body, headers=headers)


def mount(app: FastAPI, files: ConsoleFiles | None = None) -> None:
    """Serve the console at `/` of `app`; call after every other route is added."""
    files = files or ConsoleFiles()

    async def asset(request: Request, name: str) -> Any:
        found = files.asset(name, request.headers.get("accept-encoding", ""))
        if found is None:
            return PlainTextResponse("not found\n", status_code=404, headers=security_headers())
        return _file(found, name, IMMUTABLE)

    app.add_api_route("/assets/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.default = PageFallback(files, app.router.default)
