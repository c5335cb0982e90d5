"""Database engines and migrations: SQLite by default, PostgreSQL by URL (the only engine setup)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql+asyncpg://) and pick our drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url[len("sqlite+aiosqlite://") :]
    return url


def create_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=4
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across app crashes in WAL mode
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """A sync engine driven from asyncio: each unit of work is one call into one worker thread.

    Async SQLAlchemy pays one thread hop per statement on aiosqlite; here a whole unit of work
    (several statements, one transaction) costs a single hop.
    """

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = create_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # SQLite has one writer: a single thread avoids lock contention between our own threads
        workers = 1 if self.is_sqlite else 8
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanline-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) inside one transaction in the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_sync, fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            with self.engine.begin() as conn:
                return fn(conn, *args)
        except sa.exc.OperationalError as exc:
            raise StorageError(f"database unavailable: {exc.orig.__class__.__name__}") from exc

    def migrate(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()


__all__ = ["Connection", "Database", "create_engine", "normalise_url", "upgrade"]
