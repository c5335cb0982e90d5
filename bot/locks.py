"""Per-fan serialisation: one turn at a time per contact, in this process and across processes.

In one process an asyncio.Lock per contact (FIFO, so turns keep their arrival order). On
PostgreSQL a session-level advisory lock on a dedicated async connection extends that across
server processes; it is released with the connection if the process dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

_NAMESPACE = 0x46414E  # "FAN": keeps our advisory keys apart from other users of the database


class ContactLocks:
    def __init__(self, pg_dsn: str | None = None, *, pool_size: int = 8):
        self._local: dict[int, asyncio.Lock] = {}
        self._waiters: dict[int, int] = {}
        self._pg_dsn = pg_dsn
        self._pool_size = pool_size
        self._pool: asyncio.Queue[Any] | None = None
        self._opened = 0

    @asynccontextmanager
    async def hold(self, contact_id: int) -> AsyncIterator[None]:
        lock = self._local.setdefault(contact_id, asyncio.Lock())
        self._waiters[contact_id] = self._waiters.get(contact_id, 0) + 1
        try:
            async with lock:
                if self._pg_dsn is None:
                    yield
                else:
                    async with self._advisory(contact_id):
                        yield
        finally:
            self._waiters[contact_id] -= 1
            if self._waiters[contact_id] == 0:  # forget idle fans: memory stays flat
                del self._waiters[contact_id]
                del self._local[contact_id]

    @asynccontextmanager
    async def _advisory(self, contact_id: int) -> AsyncIterator[None]:
        conn = await self._connection()
        healthy = False
        try:
            await conn.execute("SELECT pg_advisory_lock(%s, %s)", (_NAMESPACE, contact_id))
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_NAMESPACE, contact_id))
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
