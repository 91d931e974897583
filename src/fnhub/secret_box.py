"""Encryption of stored secrets (connector passwords, endpoint tokens) with the server's key.

The key is derived with HKDF from `settings.secret_key`; when that is empty a random one is
generated once and kept in `<data_dir>/secret_key` (mode 0600), so every process of one
installation decrypts the same way. Encrypted values are strings `enc:v1:<Fernet token>`.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fnhub.config import Settings

PREFIX = "enc:v1:"
MASK = "********"
_SECRET_NAMES = ("password", "secret", "token", "api_key", "private_key", "keyfile")


def resolve_secret_key(settings: Settings) -> str:
    """The configured secret key, or the generated one persisted under the data folder.

    Several processes of one installation may start at once: the key is written whole to a
    private temporary file and linked into place, so the first link wins and the others read
    the winner's key instead of failing or reading a half-written file.
    """
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(lowered == s or lowered.endswith(f"_{s}") for s in _SECRET_NAMES)


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"fnhub stored secrets"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored secret cannot be decrypted with this secret key") from exc

    def seal(self, data: Any, previous: Any = None) -> Any:
        """Encrypt secret fields (recursively); a field sent back as MASK keeps its old value."""
        if isinstance(data, dict):
            out = {}
            prev = previous if isinstance(previous, dict) else {}
            for key, value in data.items():
                if is_secret_field(key) and isinstance(value, str):
                    if value == MASK and isinstance(prev.get(key), str):
                        out[key] = prev[key]
                    else:
                        out[key] = value if value.startswith(PREFIX) else self.encrypt(value)
                else:
                    out[key] = self.seal(value, prev.get(key))
            return out
        if isinstance(data, list):
            return [self.seal(v) for v in data]
        return data

    def open(self, data: Any) -> Any:
        """The clear form, for the code that connects or checks credentials."""
        if isinstance(data, dict):
            return {
                k: self.decrypt(v) if isinstance(v, str) and v.startswith(PREFIX) else self.open(v)
                for k, v in data.items()
            }
        if isinstance(data, list):
            return [self.open(v) for v in data]
        return data


def masked(data: Any) -> Any:
    """What the API shows: secret fields replaced by MASK."""
    if isinstance(data, dict):
        return {
            k: MASK if is_secret_field(k) and isinstance(v, str) and v else masked(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [masked(v) for v in data]
    return data
