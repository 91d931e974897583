"""The project's npm packages: installed with `npm ci` from its lock file, on every machine alike.

A project that needs npm packages holds `package.json` and `package-lock.json` beside
`fnhub.yaml`. `fnhub apply` (and `serve`) installs them with `npm ci` into the data folder,
refusing a project without a lock file (an install without one could differ between machines),
and puts both files in Redis. A worker on another machine reads them from there and runs the same
`npm ci` into its own data folder before its Node process starts, so every machine runs the same
package versions. Installs are keyed by the files' hash: an unchanged lock installs nothing, and
a changed one goes to a new folder while the old one keeps serving until the switch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.redis_replies import as_hash
from fnhub.revisions import bump

PACKAGE_JSON = "package.json"
LOCK_FILE = "package-lock.json"
#: written last into an install folder: its presence says the install completed
DONE_MARKER = ".fnhub-installed"
INSTALL_TIMEOUT_SECONDS = 600.0


class PackagesError(Exception):
    """The project's npm packages cannot be installed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Packages:
    """The two files that decide what `npm ci` installs."""

    package_json: str
    lock: str

    @property
    def hash(self) -> str:
        digest = hashlib.sha256()
        for text in (self.package_json, self.lock):
            digest.update(text.encode())
            digest.update(b"\0")
        return digest.hexdigest()


def read_project(project_dir: Path) -> Packages | None:
    """The project's package files, None when it has no `package.json`."""
    package_json = project_dir / PACKAGE_JSON
    if not package_json.is_file():
        return None
    lock = project_dir / LOCK_FILE
    if not lock.is_file():
        raise PackagesError(
            f"{package_json} has no {LOCK_FILE} beside it: run `npm install` there once to make "
            "it (fnhub installs with `npm ci`, which needs the lock so every machine gets the "
            "same versions)"
        )
    return Packages(package_json.read_text(), lock.read_text())


def install_folder(settings: Settings, packages: Packages) -> Path:
    return settings.data_dir / "node" / "packages" / packages.hash[:24]


def install(settings: Settings, packages: Packages) -> Path:
    """`npm ci` the packages into the data folder (once per lock, whoever asks first on this
    machine); returns the `node_modules` folder."""
    target = install_folder(settings, packages)
    if (target / DONE_MARKER).is_file():
        return target / "node_modules"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # worker children of one machine install once
        if not (target / DONE_MARKER).is_file():
            _npm_ci(settings, packages, target)
    return target / "node_modules"


def _npm_ci(settings: Settings, packages: Packages, target: Path) -> None:
    npm = _npm(settings)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (work / PACKAGE_JSON).write_text(packages.package_json)
        (work / LOCK_FILE).write_text(packages.lock)
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                env={**os.environ, "npm_config_update_notifier": "false"},
            )
        except subprocess.TimeoutExpired:
            raise PackagesError(
                f"`npm ci` took over {INSTALL_TIMEOUT_SECONDS:g}s and was stopped"
            ) from None
        if done.returncode != 0:
            detail = _npm_error(done.stderr or done.stdout)
            raise PackagesError(f"`npm ci` failed (exit code {done.returncode}): {detail}")
        (work / DONE_MARKER).write_text(packages.hash)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)  # an install that died half-way, without its marker
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _npm_error(output: str) -> str:
    """npm's reason: its error code and the paragraph after it (a usage text and the log
    file's path follow)."""
    lines = [line.removeprefix("npm error").strip() for line in output.strip().splitlines()]
    code = next((line for line in lines if line.startswith("code ")), "")
    reason: list[str] = []
    for line in lines:
        if line.startswith("code ") or (not line and not reason):
            continue
        if not line:
            break  # the blank line before the usage text
        reason.append(line)
    text = " ".join(reason)
    return (f"{text} ({code})" if code else text)[:2000]


def _npm(settings: Settings) -> str:
    """The `npm` beside the configured `node` (they ship together), else the one on PATH."""
    if settings.node_path:
        beside = Path(settings.node_path).with_name("npm")
        if beside.is_file():
            return str(beside)
    found = shutil.which("npm")
    if found is None:
        raise PackagesError(
            "the project has a package.json but no `npm` was found on PATH: install npm "
            "(it comes with Node.js)"
        )
    return found


def publish(client: redis.Redis, keys: Keys, packages: Packages | None) -> bool:
    """Make `packages` the ones every worker installs (None: no packages); True if that
    changed, in which case the scripts revision moves so workers pick them up."""
    current = as_hash(client.hgetall(keys.node_packages))
    now = current.get(b"hash", b"").decode()
    if now == (packages.hash if packages else ""):
        return False
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.node_packages)
    if packages is not None:
        pipe.hset(
            keys.node_packages,
            mapping={
                "hash": packages.hash,
                PACKAGE_JSON: packages.package_json,
                LOCK_FILE: packages.lock,
            },
        )
    bump(pipe, keys.scripts_revision)
    pipe.execute()
    return True


def published(client: redis.Redis, keys: Keys) -> Packages | None:
    """The packages workers install now, None when the project has none."""
    raw = as_hash(client.hgetall(keys.node_packages))
    if b"hash" not in raw:
        return None
    return Packages(raw[PACKAGE_JSON.encode()].decode(), raw[LOCK_FILE.encode()].decode())


def installed_modules(settings: Settings, client: redis.Redis, keys: Keys) -> Path | None:
    """The `node_modules` folder of the published packages on this machine, installing them
    first when this machine has not yet; None when the project has no packages."""
    packages = published(client, keys)
    return None if packages is None else install(settings, packages)


def sync_project(settings: Settings, client: redis.Redis, keys: Keys) -> Path | None:
    """At apply: install the project's packages here (refusing what cannot install: nothing
    is published then) and publish them for the workers; returns `node_modules`."""
    packages = read_project(settings.project_dir)
    modules = None if packages is None else install(settings, packages)
    publish(client, keys, packages)
    return modules
