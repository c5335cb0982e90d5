"""Operations: is the database's schema at the newest migration (readiness, `fanline db`)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def head_revision() -> str:
    """The newest migration this code knows (Alembic's head)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.storage.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    return str(head)


def schema_revision(conn: Any) -> str | None:
    """The migration the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()
