"""Per-fan serialisation: one turn at a time per fan, in this process and across processes.

Keyed by the fan's phone number, which is known before anything is recorded, so recording
and loading happen under the lock in one trip. In one process an asyncio.Lock per fan (FIFO,
so turns keep their arrival order). On
PostgreSQL a session-level advisory lock on a dedicated async connection extends that across
server processes; it is released with the connection if the process dies.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

_NAMESPACE = 0x46414E  # "FAN": keeps our advisory keys apart from other users of the database


class ContactLocks:
    def __init__(self, pg_dsn: str | None = None, *, pool_size: int = 8):
        self._local: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        self._pg_dsn = pg_dsn
        self._pool_size = pool_size
        self._pool: asyncio.Queue[Any] | None = None
        self._opened = 0

    def busy(self, key: str) -> bool:
        """Whether a turn of this fan holds or awaits the lock in this process right now."""
        return key in self._waiters

    def waiting(self, key: str) -> int:
        """How many turns of this fan hold or await the lock in this process right now."""
        return self._waiters.get(key, 0)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._local.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                if self._pg_dsn is None:
                    yield
                else:
                    async with self._advisory(_advisory_key(key)):
                        yield
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:  # forget idle fans: memory stays flat
                del self._waiters[key]
                del self._local[key]

    @asynccontextmanager
    async def _advisory(self, lock_id: int) -> AsyncIterator[None]:
        conn = await self._connection()
        healthy = False
        try:
            await conn.execute("SELECT pg_advisory_lock(%s, %s)", (_NAMESPACE, lock_id))
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_NAMESPACE, lock_id))
                healthy = True
        finally:
            if healthy:
                assert self._pool is not None
                self._pool.put_nowait(conn)
            else:  # closing releases whatever it held; never reuse a broken connection
                await conn.close()
                self._opened -= 1

    async def _connection(self) -> Any:
        import psycopg

        if self._pool is None:
            self._pool = asyncio.Queue()
        if self._pool.empty() and self._opened < self._pool_size:
            self._opened += 1
            try:
                return await psycopg.AsyncConnection.connect(self._pg_dsn, autocommit=True)
            except BaseException:
                self._opened -= 1
                raise
        return await self._pool.get()

    async def aclose(self) -> None:
        while self._pool is not None and not self._pool.empty():
            await self._pool.get_nowait().close()
            self._opened -= 1


def _advisory_key(key: str) -> int:
    """A stable signed 32-bit key for pg_advisory_lock(int, int); collisions only serialise."""
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)
