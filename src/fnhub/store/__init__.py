"""Persistence: SQLAlchemy models, the database handle and Alembic migrations."""

from fnhub.store.db import Database
from fnhub.store.models import Base

__all__ = ["Base", "Database"]
