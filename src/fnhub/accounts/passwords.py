"""Password hashing with argon2id (argon2-cffi's recommended parameters).

`verify` always spends one hash computation: an unknown or disabled user is checked against a
hash of a random password, so the time an answer takes says nothing about which part was wrong.
That hash is `DUMMY_HASH`, made once with the current parameters from a password nobody kept:
computing one at start-up cost a server 0.2 s of CPU on four threads before its port opened
(issue 23). Only if argon2-cffi's parameters change is one made, at the first need.
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing cost grows with the input; refuse absurd ones before hashing

_hasher = PasswordHasher()
#: argon2id, m=65536, t=3, p=4 (argon2-cffi's defaults) of 32 random bytes, discarded
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$MRoO5XvMNgQTn/DTtQQ0eA"
    "$R1TMizDdhSbYGH/BU7Li8tu8bqyR7fCGye4aXBkP/Q8"
)
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()  # a sign-in during the warm-up waits for its hash


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_strength(password: str) -> None:
    """ValueError for a password too short or too long to accept."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"the password must have at most {MAX_LENGTH} characters")


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            fits = not _hasher.check_needs_rehash(DUMMY_HASH)  # costs what a real hash costs
            _dummy_hash = DUMMY_HASH if fits else _hasher.hash(secrets.token_urlsafe(16))
        return _dummy_hash


def verify(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash (no such user) the same work is done for False."""
    try:
        _hasher.verify(password_hash or _dummy(), password)  # raises unless it matches
        return password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)


def random_password() -> str:
    """A password for a generated account (about 128 bits)."""
    return secrets.token_urlsafe(16)


def warm_up() -> None:
    """Have the dummy hash ready, so the first sign-in of an unknown user is not faster.

    A server does it in a thread while its lifespan starts the rest, done before the port
    opens; with `DUMMY_HASH` fitting the current parameters it computes nothing."""
    _dummy()
