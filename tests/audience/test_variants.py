"""A/B broadcasts on a real database: the test share split evenly and the same way every time,
the rest held, the winner by click-through or replies, sent to the rest once (auto or by hand),
per-variant statistics."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.audience.links import LinkSettings
from bot.audience.variants import HASH_MODULUS, ab_test, parse_duration, parse_share
from bot.errors import ConfigError, Conflict
from bot.storage import Store
from bot.storage.broadcast_tables import broadcast_recipients
from bot.storage.engagement_tables import links
from bot.storage.link_store import LinkStore
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number
from tests.broadcasts.test_cli import run

FANS = 120
A_TEXT = "Tickets A https://tix.example.com/a"


def service(store: Store) -> BroadcastService:
    return BroadcastService(store, chunk_size=50, links=LinkSettings(domain="https://nova.fm"))


async def ab_broadcast(store: Store, **options: str) -> tuple[BroadcastService, int]:
    await add_fans(store, [{"phone": number(i)} for i in range(FANS)])
    svc = service(store)
    ab = ab_test(A_TEXT, ["B: Tickets B https://tix.example.com/b"],
                 test_share="50%", decide_after="2h", **options)  # fmt: skip
    bid = await broadcast(svc, A_TEXT, ab=ab)
    await svc.send(bid)
    await svc.enqueue(bid)
    return svc, bid


async def texts(store: Store, bid: int) -> list[tuple[int, str]]:
    def rows(conn: sa.Connection) -> list[tuple[int, str]]:
        m = messages.c
        found = conn.execute(sa.select(m.contact_id, m.body).where(m.broadcast_id == bid))
        return [(r.contact_id, r.body) for r in found]

    return await store.db.run(rows)


async def mark_sent(store: Store, bid: int, at: datetime) -> None:
    """The outbox sender's part, done directly: every queued text of the broadcast sent."""

    def go(conn: sa.Connection) -> None:
        conn.execute(
            messages.update()
            .where(messages.c.broadcast_id == bid, messages.c.status == "queued")
            .values(status="sent", sent_at=at)
        )

    await store.db.run(go)


async def variant_of(store: Store, bid: int) -> dict[int, int | None]:
    def rows(conn: sa.Connection) -> dict[int, int | None]:
        r = broadcast_recipients.c
        found = conn.execute(sa.select(r.contact_id, r.variant_id).where(r.broadcast_id == bid))
        return dict(found.all())  # type: ignore[arg-type]

    return await store.db.run(rows)


async def test_the_test_share_is_split_evenly_and_the_rest_held(store: Store) -> None:
    svc, bid = await ab_broadcast(store)
    assigned = await variant_of(store, bid)
    assert len(assigned) == FANS  # every fan of the segment is a recipient, held or texted
    sent = await texts(store, bid)
    by_body = Counter(body.split(" https")[0][-1] for _, body in sent)
    held = sum(v is None for v in assigned.values())
    assert len(sent) + held == FANS
    assert 0.35 * FANS <= len(sent) <= 0.65 * FANS  # 50 % of 120 fans, by a hash
    assert abs(by_body["A"] - by_body["B"]) <= 0.25 * len(sent)
    b = await svc.get(bid)
    # the same fan always falls the same way: the bucket is a function of fan and broadcast
    assert b.ab is not None
    ids = [v.id for v in b.ab.variants]
    for cid, vid in assigned.items():
        bucket = (cid * 2_654_435_761 + (bid * 40_503) % HASH_MODULUS) % HASH_MODULUS
        expected = ids[bucket % 2] if bucket < int(0.5 * HASH_MODULUS) else None
        assert vid == expected
    stats = await svc.stats(bid)
    assert b.status == "sending" and b.decide_at is not None
    assert b.enqueued == len(sent)  # texts written so far (the held fans come with the winner)
    assert [v.label for v in stats.variants] == ["A", "B"]
    await mark_sent(store, bid, datetime.now(UTC))
    await svc.run_due()  # before decide_at: nothing is decided, the broadcast stays open
    assert (await svc.get(bid)).status == "sending"
    assert len(await texts(store, bid)) == len(sent)


async def test_the_winner_by_ctr_goes_to_the_rest_once(store: Store) -> None:
    svc, bid = await ab_broadcast(store)
    at = datetime.now(UTC)
    await mark_sent(store, bid, at)
    codes = await store.db.run(
        lambda c: c.execute(
            sa.select(links.c.code, links.c.url).where(links.c.broadcast_id == bid)
        ).all()
    )
    clicks = LinkStore(store.db)
    b_codes = [code for code, url in codes if "tix.example.com/b" in url]
    a_codes = [code for code, url in codes if "tix.example.com/a" in url]
    for code in b_codes[:3]:
        assert await clicks.click(code, "human")
    assert await clicks.click(a_codes[0], "human")
    for code in a_codes[1:6]:
        await clicks.click(code, "preview")  # previews never count
    b = await svc.get(bid)
    assert b.decide_at is not None
    later = b.decide_at + timedelta(seconds=1)
    await asyncio.gather(svc.run_due(at=later), svc.run_due(at=later))  # two schedulers
    await svc.run_due(at=later)
    sent = await texts(store, bid)
    assert len(sent) == FANS == len({cid for cid, _ in sent})  # everyone once
    assigned = await variant_of(store, bid)
    b = await svc.get(bid)
    assert b.ab is not None and b.ab.winner is not None and b.ab.winner.label == "B"
    rest = [body for cid, body in sent if assigned[cid] == b.ab.winner.id]
    assert all(body.startswith("Tickets B https://nova.fm/l/") for body in rest)
    # each text carries its fan's variant (the reports count per variant from it)
    carried = await store.db.run(lambda c: dict(c.execute(  # type: ignore[arg-type]
        sa.select(messages.c.contact_id, messages.c.variant_id)
        .where(messages.c.broadcast_id == bid)).all()))  # fmt: skip
    assert carried == assigned
    stats = await svc.stats(bid)
    a, bb = stats.variants
    assert (a.clicks, bb.clicks, bb.winner) == (1, 3, True)
    assert bb.ctr > a.ctr
    with pytest.raises(Conflict, match="already sent"):
        await svc.send_winner(bid)


async def test_manual_winner_by_replies_waits_for_send_winner(store: Store) -> None:
    svc, bid = await ab_broadcast(store, winner_by="replies", send_winner="manual")
    at = datetime.now(UTC) - timedelta(minutes=5)
    await mark_sent(store, bid, at)
    b = await svc.get(bid)
    assert b.ab is not None
    variant_a = b.ab.variants[0].id
    a_fans = [cid for cid, v in (await variant_of(store, bid)).items() if v == variant_a]

    def replies(conn: sa.Connection) -> None:
        conn.execute(messages.insert(), [
            {"contact_id": cid, "direction": "in", "body": "yes!", "kind": "sms",
             "status": "received", "created_at": at + timedelta(minutes=1)}
            for cid in a_fans[:2]
        ])  # fmt: skip

    await store.db.run(replies)
    assert b.decide_at is not None
    await svc.run_due(at=b.decide_at + timedelta(seconds=1))
    b = await svc.get(bid)
    assert b.ab is not None and b.ab.winner is not None and b.ab.winner.label == "A"
    assert b.winner_sent_at is None  # manual: chosen, not sent
    tested = len(await texts(store, bid))
    assert tested < FANS
    stats = await svc.stats(bid)
    assert [v.replies for v in stats.variants] == [2, 0]
    results = await asyncio.gather(svc.send_winner(bid), svc.send_winner(bid),
                                   return_exceptions=True)  # fmt: skip
    assert sum(isinstance(r, Conflict) for r in results) == 1
    await svc.pause(bid)  # paused before the rest are written: resuming goes on writing them
    await svc.resume(bid)
    assert (await svc.get(bid)).status == "sending"
    sent = await texts(store, bid)
    assert len(sent) == FANS == len({cid for cid, _ in sent})
    rest = [body for cid, body in sent if (await variant_of(store, bid))[cid] == variant_a]
    assert len(rest) > len(a_fans) and all(body.startswith("Tickets A ") for body in rest)


def test_options_are_checked() -> None:
    assert ab_test("hi", []) is None
    assert parse_share("20%") == 0.2 and parse_share("0.2") == 0.2
    assert parse_duration("90m") == 5400 and parse_duration("1d") == 86400
    for bad in (["B hi"], ["A: hi"], ["B: x", "B: y"], ["B: 1", "C: 2", "D: 3", "E: 4", "F: 5"]):
        with pytest.raises(ConfigError):
            ab_test("hi", bad)
    assert len(ab_test("hi", ["B: 1", "C: 2", "D: 3", "E: 4"]).variants) == 5  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        ab_test("hi", ["B: yo"], test_share="100%")
    with pytest.raises(ConfigError):
        ab_test("hi", ["B: yo"], decide_after="8d")
    with pytest.raises(ConfigError, match="variant"):
        ab_test("hi", [], winner_by="ctr")


def test_the_commands(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")
    (tmp_path / "config.yml").write_text("fanline:\n  links: {domain: nova.fm}\n")
    store = Store.open(database_url, hash_key=b"cli-test")
    try:
        asyncio.run(add_fans(store, [{"phone": number(i)} for i in range(40)]))
    finally:
        store.close()
    assert run(tmp_path, "broadcast", "create", "tour", "--text", "A https://tix.example.com",
               "--variant", "B: B https://tix.example.com", "--test-share", "50%",
               "--winner-by", "replies", "--decide-after", "1h", "--send-winner", "manual",
               "--quiet-hours", "00:00-00:00") == 0  # fmt: skip
    assert run(tmp_path, "broadcast", "preview", "1") == 0
    assert "https://nova.fm/l/" in capsys.readouterr().out
    assert run(tmp_path, "broadcast", "send", "1", "--no-wait") == 0
    assert run(tmp_path, "broadcast", "status", "1", "--no-wait") == 0
    out = capsys.readouterr().out
    assert "variant A: sent 0" in out and "variant B:" in out
    assert run(tmp_path, "broadcast", "send-winner", "1", "--variant", "b") == 0
    assert "variant B goes to the rest" in capsys.readouterr().out
    assert run(tmp_path, "broadcast", "status", "1", "--no-wait") == 0
    assert "40 recipients" in capsys.readouterr().out
    with pytest.raises(Conflict, match="already sent"):  # once only (fanline prints it)
        run(tmp_path, "broadcast", "send-winner", "1")
