"""Roles, from least to most allowed: viewer reads, developer also changes what runs, admin all.

What each route needs is decided in `fnhub.server.access` (by HTTP method, unless a router or a
route declares otherwise), so this module only knows the order.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    DEVELOPER = "developer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether a caller with this role may do what `needed` is required for."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2}

ROLE_PATTERN = r"^(viewer|developer|admin)$"
