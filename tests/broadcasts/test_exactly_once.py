"""Exactly once, proven with real processes: a sender killed mid-broadcast resumes without a
second copy to anyone, and a fan who texts STOP mid-broadcast gets nothing more."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.storage import Store
from bot.storage.tables import messages
from bot.testing import serve_in_process
from bot.testing.twilio_server import TwilioServer
from tests.broadcasts.helpers import add_fans, broadcast, number

SENDER = Path(__file__).with_name("sender_process.py")
FANS = 200


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[TwilioServer, str]]:
    server = TwilioServer(seed=3)
    async with serve_in_process(server.app) as url:
        yield server, url


async def start_sender(url: str, twilio_url: str, broadcast_id: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SENDER), url, twilio_url, str(broadcast_id),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def wait_for_accepted(
    server: TwilioServer, at_least: int, proc: asyncio.subprocess.Process
) -> None:
    """Wait (bounded) until the server has accepted `at_least` texts; the sender must be alive."""
    for _ in range(3000):  # at most ~60 s
        if len(server.messages) >= at_least:
            return
        assert proc.returncode is None, (await proc.stderr.read()).decode()[:3000]  # type: ignore[union-attr]
        await asyncio.sleep(0.02)  # polling a condition, not timing the test
    raise AssertionError(f"only {len(server.messages)} texts accepted")


async def statuses(store: Store, broadcast_id: int) -> dict[str, str]:
    def rows(conn: sa.Connection) -> dict[str, str]:
        found = conn.execute(
            sa.select(messages.c.to_number, messages.c.status).where(
                messages.c.broadcast_id == broadcast_id
            )
        ).all()
        return {to: status for to, status in found}

    return await store.db.run(rows)


async def test_a_sender_killed_mid_broadcast_resumes_without_second_copies(
    store: Store, database_url: str, twilio: tuple[TwilioServer, str]
) -> None:
    server, twilio_url = twilio
    fans = [number(i) for i in range(FANS)]
    await add_fans(
        store, [{"phone": p, "profile": {"first_name": f"Fan{i}"}} for i, p in enumerate(fans)]
    )
    service = BroadcastService(store)
    bid = await broadcast(service, "Hi {first_name}, the tour is on sale!")
    await service.send(bid)

    first = await start_sender(database_url, twilio_url, bid)
    await wait_for_accepted(server, FANS // 4, first)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed_at = len(server.messages)
    assert 0 < killed_at < FANS, "the kill must land mid-broadcast"

    second = await start_sender(database_url, twilio_url, bid)
    out, err = await second.communicate()
    assert second.returncode == 0, err.decode()[-2000:]

    received = Counter(m["to"] for m in server.accepted())
    assert max(received.values()) == 1, "somebody got a second copy"
    rows = await statuses(store, bid)
    assert len(rows) == FANS  # one outbox row per fan, never two
    sent = {to for to, status in rows.items() if status == "sent"}
    assert sent <= set(received)
    # rows the killed process had claimed but not recorded stay `sending`: never sent twice
    in_doubt = {to for to, status in rows.items() if status == "sending"}
    assert len(in_doubt) <= 5 * 2  # at most one claimed batch per lane
    assert sent | in_doubt == set(fans)
    assert all(m["body"].startswith("Hi Fan") for m in server.accepted())
    stats = await service.stats(bid)
    assert stats.recipients == FANS and stats.count("queued") == 0


async def test_a_fan_who_texts_stop_mid_broadcast_gets_nothing_more(
    store: Store, twilio: tuple[TwilioServer, str]
) -> None:
    from bot.channels.twilio_gateway import TwilioGateway
    from bot.domain import ConsentChange
    from bot.outbound import OutboundSender
    from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

    server, twilio_url = twilio
    fans = [number(i) for i in range(10)]
    ids = await add_fans(store, [{"phone": p} for p in fans])
    service = BroadcastService(store)
    bid = await broadcast(service, "New single out now")
    await service.send(bid)
    await service.enqueue(bid)
    gateway = TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006",
                            base_url=twilio_url)  # fmt: skip
    sender = OutboundSender(store, gateway, rate_per_second=1000, batch_size=3, lanes=1)
    try:
        assert await sender.send_batch() == 3  # fans 0-2 have it
        # fan 5 texts STOP: the store's compliance path, as the pipeline takes it
        await store.set_subscription(ids[5], ConsentChange("opt_out", "sms_keyword"))
        await sender.drain()
    finally:
        await gateway.aclose()

    received = Counter(m["to"] for m in server.accepted())
    assert fans[5] not in received
    assert all(received[p] == 1 for i, p in enumerate(fans) if i != 5)
    stats = await service.stats(bid)
    assert stats.count("sent") == 9 and stats.count("cancelled") == 1
    assert stats.opted_out_since == 1
