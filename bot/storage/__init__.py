"""Persistence: the only package that imports SQLAlchemy. Repositories return plain domain types."""

from bot.storage.db import Database
from bot.storage.store import Store

__all__ = ["Database", "Store"]
