"""Database engines and migrations: SQLite by default, PostgreSQL by URL (the only engine setup)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x70_1C_60  # pg advisory lock key held while migrating


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
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=4,
            hide_parameters=True,
        )  # fmt: skip
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: a database error never quotes a fan's number or text into a log
    return sa.create_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across app crashes in WAL mode
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # erased data is overwritten with zeros, not left in free pages (see `Database.forget`)
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # processes starting together migrate one by one
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """A sync engine driven from asyncio: each unit of work is one call into a database thread.

    Async SQLAlchemy pays one thread hop per statement on aiosqlite; here a whole unit of work
    (several statements, one transaction) costs a single hop. On SQLite one writer thread also
    commits the units of work that queued up meanwhile together (group commit): the commit is
    the expensive part, and concurrent fans' turns share it.
    """

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = create_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            self._writer: _GroupCommitter | None = _GroupCommitter(self.engine)
            self._pool = None
        else:
            self._writer = None
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fanline-db")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) inside a transaction in a database thread; its result after commit."""
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            future: asyncio.Future[T] = loop.create_future()
            self._writer.submit(fn, args, loop, future)
            return await future
        return await loop.run_in_executor(self._pool, self.run_sync, fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            with self.engine.begin() as conn:
                return fn(conn, *args)
        except sa.exc.OperationalError as exc:
            raise _unavailable(exc) from exc

    def forget(self) -> None:
        """After an erasure: no old copy of erased data stays in the database's files.

        SQLite keeps earlier versions of changed pages in the write-ahead log until a
        checkpoint; TRUNCATE copies the log into the database (whose freed space
        `secure_delete` has zeroed) and empties it. It waits for readers of older snapshots.
        PostgreSQL keeps dead row versions until VACUUM reclaims them (docs/privacy.md).
        """
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            raise StorageError("the erasure is committed, but the log could not be emptied yet")

    def migrate(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.engine.dispose()


class _GroupCommitter:
    """One writer thread; the jobs waiting when it frees up run in one transaction.

    If any job of a batch fails, the batch is rolled back and each job re-run on its own, so a
    failure only ever affects its own caller.
    """

    def __init__(self, engine: Engine, max_batch: int = 64):
        self._engine = engine
        self._conn: Connection | None = None  # the writer's own, held open (see _run_alone)
        self._max = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="fanline-db-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], loop: Any, future: Any) -> None:
        self._jobs.put((fn, args, loop, future))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _run_alone(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(conn, *args) in one transaction on the writer thread's own connection: held
        open, since a pool checkout, reset and checkin per unit of work cost as much as a
        statement; a connection that broke is replaced at the next unit of work."""
        conn = self._conn
        if conn is None or conn.invalidated or conn.closed:
            conn = self._conn = self._engine.connect()
        try:
            with conn.begin():
                return fn(conn, *args)
        except sa.exc.OperationalError as exc:
            raise _unavailable(exc) from exc

    def _work(self) -> None:
        try:
            self._serve()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self._max:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._run(batch)
                    return
                batch.append(nxt)
            self._run(batch)

    def _run(self, batch: list[Any]) -> None:
        if len(batch) > 1:
            try:
                results = self._run_alone(
                    lambda conn: [fn(conn, *args) for fn, args, _, _ in batch]
                )
            except Exception:  # isolate the failure: every job again, on its own
                pass
            else:  # one wake-up of each event loop for the whole batch, not one per job
                by_loop: dict[Any, list[tuple[Any, Any]]] = {}
                for (_, _, loop, fut), result in zip(batch, results, strict=True):
                    by_loop.setdefault(loop, []).append((fut, result))
                for loop, done in by_loop.items():
                    loop.call_soon_threadsafe(_resolve_all, done)
                return
        for fn, args, loop, fut in batch:
            try:
                result = self._run_alone(fn, *args)
            except BaseException as exc:  # handed to the awaiting caller, never lost here
                loop.call_soon_threadsafe(_resolve, fut, None, exc)
            else:
                loop.call_soon_threadsafe(_resolve, fut, result, None)


def _unavailable(exc: Any) -> StorageError:
    return StorageError(f"database unavailable: {exc.orig.__class__.__name__}")


def _resolve_all(done: list[tuple[Any, Any]]) -> None:
    for future, result in done:
        _resolve(future, result, None)


def _resolve(future: Any, result: Any, exc: BaseException | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


@contextmanager
def scratch_schema(url: str, prefix: str = "scratch") -> Iterator[str]:
    """A PostgreSQL schema of its own for a test or a benchmark, dropped afterwards; the URL
    returned points there (search_path), so nothing else in that database is seen or touched."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


__all__ = [
    "Connection", "Database", "create_engine", "normalise_url", "scratch_schema", "upgrade",
]  # fmt: skip
