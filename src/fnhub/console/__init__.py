"""The web console: the built single-page app (`console/` at the repo root, bundled by esbuild into
`static/`), served by the API's own server at `/`. See docs/console.md."""

from fnhub.console.routes import mount

__all__ = ["mount"]
