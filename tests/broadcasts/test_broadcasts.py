"""Broadcast lifecycle on a real database: personalisation, quiet hours, pacing, pause/resume/
cancel, scheduling, restartable enqueuing and preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.audience.broadcast_model import Placeholder, parse_template, render
from bot.audience.broadcasts import BroadcastFailed, BroadcastService
from bot.audience.quiet_hours import QuietHours, zone_for_fan
from bot.errors import ConfigError, Conflict
from bot.storage import Store
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def outbox(store: Store, broadcast_id: int) -> dict[str, tuple[str, str, datetime | None]]:
    def rows(conn: sa.Connection) -> dict[str, tuple[str, str, datetime | None]]:
        found = conn.execute(
            sa.select(
                messages.c.to_number, messages.c.body, messages.c.status, messages.c.not_before
            ).where(messages.c.broadcast_id == broadcast_id)
        ).all()
        return {
            r.to_number: (
                r.body,
                r.status,
                r.not_before.replace(tzinfo=UTC) if r.not_before else None,
            )
            for r in found
        }

    return await store.db.run(rows)


def test_templates_personalise_with_fallbacks_and_refuse_stray_braces() -> None:
    parts = parse_template("Hi {first_name|friend}! {{VIP}} {city}")
    assert Placeholder("first_name", "friend") in parts
    assert render(parts, {"first_name": "Ana", "city": "LA"}) == "Hi Ana! {VIP} LA"
    assert render(parts, {}) == "Hi friend! {VIP} "
    with pytest.raises(ConfigError, match="placeholder"):
        parse_template("50% off {today")


def test_quiet_hours_hold_until_the_local_window_opens() -> None:
    quiet = QuietHours.parse("08:00", "21:00")
    # 03:00 UTC = 23:00 in New York (EDT) and 20:00 in Los Angeles
    at = utc(2026, 6, 2, 3, 0)
    assert quiet.opens_at("America/New_York", at) == utc(2026, 6, 2, 12, 0)
    assert quiet.opens_at("America/Los_Angeles", at) is None
    assert zone_for_fan({"zip": "90026"}, "+12125550100") == "America/Los_Angeles"
    assert zone_for_fan({}, "+442071234567") == "Europe/London"
    assert zone_for_fan({"timezone": "Asia/Tokyo", "zip": "10001"}, None) == "Asia/Tokyo"


async def test_enqueue_personalises_and_holds_each_fan_to_their_own_window(store: Store) -> None:
    await add_fans(store, [
        {"phone": number(1), "profile": {"first_name": "Ana", "zip": "10001"}},
        {"phone": number(2), "profile": {"zip": "90026"}},
        {"phone": "+442071234567", "profile": {"first_name": "Bea"}},
        {"phone": number(4), "profile": {"timezone": "Asia/Tokyo"}},
    ])  # fmt: skip
    service = BroadcastService(store)
    bid = await broadcast(service, "Hey {first_name|you}!", quiet_start="08:00", quiet_end="21:00")
    await service.send(bid)
    at = utc(2026, 6, 2, 3, 0)  # NY 23:00, LA 20:00, London 04:00, Tokyo 12:00
    assert await service.enqueue(bid, at=at) == 4
    rows = await outbox(store, bid)
    assert rows[number(1)][:2] == ("Hey Ana!", "queued")
    assert rows[number(1)][2] == utc(2026, 6, 2, 12, 0)  # 08:00 in New York
    assert rows["+442071234567"][2] == utc(2026, 6, 2, 7, 0)  # 08:00 in London (BST)
    assert rows[number(2)][0] == "Hey you!"
    due_now = datetime.now(UTC) + timedelta(seconds=1)
    assert rows[number(2)][2] <= due_now  # in its window: paced from the start, not held
    assert rows[number(4)][2] <= due_now


async def test_pacing_spreads_a_chunk_over_time_at_the_broadcast_rate(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(40)])
    service = BroadcastService(store, chunk_size=40)
    bid = await broadcast(service, "Tickets!", rate=10)
    await service.send(bid)
    at = datetime.now(UTC)
    await service.enqueue(bid, at=at)
    times = sorted(t for _, _, t in (await outbox(store, bid)).values())
    assert times[0] <= at + timedelta(seconds=1)
    assert timedelta(seconds=2.5) <= times[-1] - times[0] <= timedelta(seconds=4)


async def test_enqueue_resumes_from_its_cursor_and_never_duplicates(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(25)])
    service = BroadcastService(store, chunk_size=10)
    bid = await broadcast(service, "Hello")
    await service.send(bid)
    assert await service.enqueue(bid, max_chunks=1) == 10  # "crash" after the first chunk
    assert await service.enqueue(bid) == 15
    assert await service.enqueue(bid) == 0
    assert len(await outbox(store, bid)) == 25
    assert (await service.get(bid)).status == "sending"
    # even a corrupted cursor cannot produce a second copy: the unique constraints refuse
    from bot.storage.broadcast_tables import broadcasts

    await store.db.run(
        lambda c: c.execute(
            broadcasts.update().values(cursor=0, status="enqueuing", enqueued_at=None)
        )
    )
    with pytest.raises(BroadcastFailed, match="IntegrityError"):
        await service.enqueue(bid)  # and the broadcast says so instead of blocking the scheduler
    assert len(await outbox(store, bid)) == 25
    assert (await service.get(bid)).status == "failed"


async def test_pause_resume_cancel(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(6)])
    service = BroadcastService(store)
    bid = await broadcast(service, "Hello")
    await service.send(bid)
    await service.enqueue(bid)
    assert await service.pause(bid) == 6
    assert {s for _, s, _ in (await outbox(store, bid)).values()} == {"paused"}
    assert await store.claim_outbox(10) == []  # held texts are invisible to the sender
    assert await service.resume(bid) == 6
    assert len(await store.claim_outbox(2)) == 2
    assert await service.cancel(bid) == 4
    stats = await service.stats(bid)
    assert stats.count("cancelled") == 4 and stats.count("sending") == 2
    with pytest.raises(Conflict):
        await service.resume(bid)


async def test_scheduled_broadcasts_start_when_due(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(3)])
    service = BroadcastService(store)
    bid = await broadcast(service, "Later")
    with pytest.raises(ConfigError, match="time zone"):
        await service.schedule(bid, datetime(2030, 1, 1, 12, 0))
    when = datetime.now(UTC) + timedelta(hours=2)
    assert (await service.schedule(bid, when)).status == "scheduled"
    assert await service.run_due() == []
    assert await service.run_due(when + timedelta(seconds=1)) == [bid]
    assert len(await outbox(store, bid)) == 3
    with pytest.raises(Conflict):
        await service.send(bid)


async def test_preview_counts_segments_and_cost_before_sending(store: Store) -> None:
    await add_fans(store, [
        {"phone": number(1), "profile": {"first_name": "Ana"}},
        {"phone": number(2), "profile": {"first_name": "Zoë"}},  # ë is GSM-7? no: UCS-2
        {"phone": number(3)},
    ])  # fmt: skip
    service = BroadcastService(store, segment_price=0.01)
    bid = await broadcast(service, "Hi {first_name|there}! " + "x" * 140)
    p = await service.preview(bid)
    assert p.recipients == 3 and p.encoding == "UCS-2"
    assert p.max_segments == 3  # 150+ characters in UCS-2: 67 per segment
    assert p.estimated_segments == round(p.segments_per_text * 3)
    assert p.estimated_cost == pytest.approx(p.estimated_segments * 0.01)
    assert p.held_now == 0
    assert (await service.get(bid)).status == "draft" and await outbox(store, bid) == {}
