"""In-doubt sends are never sent blindly twice: a lost answer whose lookup fails stays
`in_doubt`, is looked up again with backoff, and ends `unknown` for an operator.

Real store (SQLite; PostgreSQL when configured), real twilio SDK, the local Twilio server's
fault injection (lost answers, failing lookups, 429, 500)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bot.outbound import OutboundSender
from bot.storage.store import Store
from tests.broadcasts.test_cli import run

from .conftest import LocalTwilio
from .test_outbound_store import queue_replies

RUN = random.Random().randrange(1000, 9999)


async def test_a_fault_storm_never_gives_a_fan_two_copies(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    fans = [f"+1{RUN}55{n:04d}" for n in range(100)]
    for fan in fans:
        await queue_replies(store, fan, [f"{fan[-4:]}-a", f"{fan[-4:]}-b", f"{fan[-4:]}-c"])
    twilio.server.set_faults(rate_lost_answer=0.3, rate_lookup_500=0.6, rate_429=0.1,
                             rate_500=0.1, retry_after=0)  # fmt: skip
    sender = OutboundSender(store, gateway, rate_per_second=10_000, max_attempts=60,
                            backoff_base=0, lookup_base_s=0, max_lookups=3)  # fmt: skip

    for _ in range(30):  # bounded: send, look up what is in doubt, until all is settled
        await sender.drain()
        copies = Counter((m["to"], m["body"]) for m in twilio.server.accepted())
        assert max(copies.values()) == 1, "a text was sent twice"
        await sender.settle_in_doubt()
        if set(await store.outbox_counts()) <= {"sent", "unknown"}:
            break

    counts = await store.outbox_counts()
    assert set(counts) == {"sent", "unknown"} and sum(counts.values()) == 300
    assert sender.counts["in_doubt"] > 0 and sender.counts["unknown"] == counts["unknown"]
    unknown = await store.unknown_sends()
    assert len(unknown) == counts["unknown"] and {r["status"] for r in unknown} == {"unknown"}
    assert all(r["lookups"] == 3 and r["claimed_at"] is not None for r in unknown)
    # what an operator sees carries neither numbers nor bodies
    assert not any(fan in str(unknown) or fan[-4:] + "-" in str(unknown) for fan in fans)
    # with the faults gone, a later pass still never sends an `unknown` text again
    twilio.server.set_faults()
    before = len(twilio.server.accepted())
    await sender.drain()
    await sender.settle_in_doubt()
    assert len(twilio.server.accepted()) == before


async def test_a_lookup_that_succeeds_later_settles_the_send_as_sent(
    store: Store, twilio: LocalTwilio, gateway
) -> None:
    fan = f"+1{RUN}54{random.randrange(10_000):04d}"
    [outbox_id] = await queue_replies(store, fan, ["once"])
    twilio.server.set_faults(count_lost_answer=1, count_lookup_500=2)
    sender = OutboundSender(store, gateway, rate_per_second=100, lookup_base_s=0)

    await sender.drain()
    assert await store.message_status(outbox_id) == "in_doubt"
    await sender.settle_in_doubt()  # the second lookup fails too: still in doubt
    assert await store.message_status(outbox_id) == "in_doubt"
    await sender.settle_in_doubt()  # Twilio answers: it has the message

    assert await store.message_status(outbox_id) == "sent"
    assert [m["body"] for m in twilio.server.accepted(to=fan)] == ["once"]


def test_an_operator_lists_unknown_sends_and_settles_them(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from bot.outbound import OutboxItem

    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")
    store = Store.open(database_url, hash_key=b"cli-test")
    fan = f"+1{RUN}53{random.randrange(10_000):04d}"

    async def give_up() -> list[OutboxItem]:
        await queue_replies(store, fan, ["one", "two"])
        claimed = await store.claim_outbox(10)
        for item in claimed:
            await store.outbox_in_doubt(item, 0, "lost", give_up=True)
        return claimed

    try:
        first, second = asyncio.run(give_up())
    finally:
        store.close()

    assert run(tmp_path, "outbox", "status") == 0
    assert "unknown" in capsys.readouterr().out
    assert run(tmp_path, "outbox", "unknown") == 0
    out = capsys.readouterr().out
    assert str(first.id) in out and fan not in out and "one" not in out.split("\n", 1)[1]
    assert run(tmp_path, "outbox", "resolve", str(first.id), "--requeue") == 0
    assert run(tmp_path, "outbox", "resolve", str(second.id), "--drop") == 0
    assert run(tmp_path, "outbox", "resolve", str(second.id), "--drop") == 1  # not unknown now
    capsys.readouterr()
    assert run(tmp_path, "outbox", "status") == 0
    out = capsys.readouterr().out
    assert "queued" in out and "cancelled" in out and "unknown" not in out
