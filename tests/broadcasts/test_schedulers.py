"""Several schedulers at once (workers, processes): a due broadcast is started by exactly one,
the others move on, and nothing ends `failed` for it; a failed broadcast can be retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.storage import Store
from bot.storage.broadcast_tables import broadcasts
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number

ROUNDS = 12


async def test_two_schedulers_start_each_due_broadcast_once_and_none_fails(
    store: Store, database_url: str
) -> None:
    """Two schedulers with their own connections pick the same due broadcasts at one moment:
    the loser of each start moves on; before, it recorded the conflict as a failure."""
    await add_fans(store, [{"phone": number(i)} for i in range(3)])
    other = Store.open(database_url, hash_key=b"test-key")
    try:
        first, second = BroadcastService(store), BroadcastService(other)
        when = datetime.now(UTC) - timedelta(seconds=1)
        ids = []
        for i in range(ROUNDS):
            bid = await broadcast(first, f"Hi {i}")
            await first.schedule(bid, datetime.now(UTC) + timedelta(hours=1))
            ids.append(bid)
        await store.db.run(
            lambda c: c.execute(broadcasts.update().values(send_at=when))
        )  # all due now
        a, b = await asyncio.gather(first.run_due(), second.run_due())
        assert set(a) | set(b) == set(ids)  # (one may help the other enqueue: chunks are locked)
        rows = await store.db.run(
            lambda c: c.execute(sa.select(broadcasts.c.status, broadcasts.c.error)).all()
        )
        assert [(r.status, r.error) for r in rows] == [("sending", None)] * ROUNDS
        for bid in ids:
            stats = await first.stats(bid)
            assert stats.count("queued") == 3 and stats.recipients == 3  # once per fan
    finally:
        other.close()


async def test_a_failed_broadcast_is_retried_from_where_it_stopped(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(4)])
    service = BroadcastService(store, chunk_size=2)
    bid = await broadcast(service, "Hi")
    await service.send(bid)
    assert await service.enqueue(bid, max_chunks=1) == 2
    await store.db.run(
        lambda c: c.execute(
            broadcasts.update()
            .where(broadcasts.c.id == bid)
            .values(segment={"birthday_month": [13]})
        )
    )
    assert await service.run_due() == []  # the broken segment: failed, its texts held
    assert [b.status for b in await service.all()] == ["failed"]
    await store.db.run(  # the operator fixes the cause ...
        lambda c: c.execute(broadcasts.update().where(broadcasts.c.id == bid).values(segment={}))
    )
    assert await service.resume(bid) == 2  # ... and retries: the held texts go back to the queue
    b = await service.get(bid)
    assert (b.status, b.error, b.enqueued) == ("sending", None, 4)
    per_fan = await store.db.run(
        lambda c: c.execute(
            sa.select(messages.c.contact_id, sa.func.count())
            .where(messages.c.broadcast_id == bid, messages.c.status == "queued")
            .group_by(messages.c.contact_id)
        ).all()
    )
    assert sorted(n for _, n in per_fan) == [1, 1, 1, 1]  # everyone once, nobody twice
