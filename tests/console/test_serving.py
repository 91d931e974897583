"""How the server hands out the console: precompressed hashed assets cached for a year, the page
for the app's routes with a CSP (no inline script; a fresh style nonce per page), and the API's
own 404s and 405s untouched."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fnhub.console import mount
from fnhub.console.files import ConsoleFiles, accepted_encodings
from fnhub.server import errors

INDEX = '<!doctype html><meta name="csp-nonce" content="__CSP_NONCE__"><div id="app"></div>\n'
APP_JS = "console.log('app');\n" * 20


def _app(root: Path) -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.get("/api/v1/things")
    def things() -> list[int]:
        return [1]

    mount(app, ConsoleFiles(root))
    return TestClient(app)


@pytest.fixture()
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    js = tmp_path / "assets" / "app-ABC123.js"
    js.write_text(APP_JS)
    js.with_name(js.name + ".gz").write_bytes(gzip.compress(APP_JS.encode()))
    js.with_name(js.name + ".br").write_bytes(b"pretend brotli")
    return tmp_path


def test_assets_are_precompressed_and_cached_for_a_year(built: Path) -> None:
    client = _app(built)
    br = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "gzip, br"})
    assert br.status_code == 200 and br.headers["content-encoding"] == "br"
    assert br.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert br.headers["content-type"].startswith("text/javascript")
    assert br.headers["vary"] == "Accept-Encoding"
    gz = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "gzip, br;q=0"})
    assert gz.headers["content-encoding"] == "gzip" and gz.text == APP_JS  # httpx inflates it
    plain = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == APP_JS
    for name in ("nope.js", "app-ABC123.js.gz", "..%2Findex.html", ".hidden"):
        assert client.get(f"/assets/{name}").status_code == 404, name


def test_pages_get_the_app_with_a_fresh_nonce_and_no_inline_script(built: Path) -> None:
    client = _app(built)
    nonces = set()
    for path in ("/", "/scripts/hello/run/greet", "/tasks"):
        r = client.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
        assert f'content="{nonce}"' in r.text
        nonces.add(nonce)
    assert len(nonces) == 3


def test_the_api_keeps_its_own_answers(built: Path) -> None:
    client = _app(built)
    html = {"Accept": "text/html"}
    assert client.get("/api/v1/things", headers=html).json() == [1]
    missing = client.get("/api/v1/nothing", headers=html)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.delete("/api/v1/things").status_code == 405
    assert client.post("/scripts").status_code == 404  # not a page: only GET navigations are
    assert client.get("/favicon.ico", headers={"Accept": "image/*"}).status_code == 404
    assert client.get("/e/anything", headers=html).status_code == 404


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    r = _app(tmp_path).get("/", headers={"Accept": "text/html"})
    assert r.status_code == 503 and "npm ci && npm run build" in r.text


def test_accept_encoding_parsing() -> None:
    assert accepted_encodings("gzip, deflate, br") == {"gzip", "deflate", "br"}
    assert accepted_encodings("br;q=0, gzip;q=0.5") == {"gzip"}
    assert accepted_encodings("") == set()
