"""Quiet hours hold at the moment a text is sent, not only when the broadcast was queued: a
text paced past the window's end, or resumed at night, waits for the next opening in the fan's
own zone (clock-independent: the window is placed around the real time of the run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.audience.quiet_hours import QuietHours
from bot.storage import Store
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number

TOKYO = "Asia/Tokyo"


def closed_window(zone: str, now: datetime) -> tuple[dict[str, str], datetime]:
    """A sending window that was open three hours ago in `zone` and is closed now."""
    local = now.astimezone(ZoneInfo(zone))
    start, end = (local - timedelta(hours=4)), (local - timedelta(hours=2))
    return {"quiet_start": f"{start:%H:%M}", "quiet_end": f"{end:%H:%M}"}, now - timedelta(hours=3)


async def _rows(store: Store, bid: int) -> list[tuple[str, datetime | None]]:
    rows = await store.db.run(
        lambda c: c.execute(
            sa.select(messages.c.status, messages.c.not_before).where(
                messages.c.broadcast_id == bid
            )
        ).all()
    )
    return [(r.status, r.not_before.replace(tzinfo=UTC) if r.not_before else None) for r in rows]


async def test_a_text_due_after_its_window_closed_waits_for_the_next_opening(
    store: Store,
) -> None:
    await add_fans(store, [{"phone": number(1), "profile": {"timezone": TOKYO}}])
    service = BroadcastService(store)
    now = datetime.now(UTC)
    hours, queued_at = closed_window(TOKYO, now)
    bid = await broadcast(service, "Presale at 10!", default_zone=TOKYO, **hours)
    await service.send(bid)
    await service.enqueue(bid, at=queued_at)  # queued while the window was open: due at once
    assert await store.claim_outbox(10) == []  # but now it is night in Tokyo
    opens = QuietHours.parse(hours["quiet_start"], hours["quiet_end"]).opens_at(TOKYO, now)
    [(status, not_before)] = await _rows(store, bid)
    assert status == "queued" and not_before is not None and opens is not None
    assert abs(not_before - opens) < timedelta(minutes=2)  # the next opening, Tokyo time
    assert not_before.astimezone(ZoneInfo(TOKYO)).strftime("%H:%M") == hours["quiet_start"]


async def test_a_broadcast_resumed_at_night_holds_its_texts_until_morning(store: Store) -> None:
    await add_fans(store, [{"phone": number(i), "profile": {"timezone": TOKYO}} for i in range(3)])
    service = BroadcastService(store)
    hours, queued_at = closed_window(TOKYO, datetime.now(UTC))
    bid = await broadcast(service, "Hi", default_zone=TOKYO, **hours)
    await service.send(bid)
    await service.enqueue(bid, at=queued_at)
    await service.pause(bid)
    await service.resume(bid)  # resumed outside the Tokyo fans' window
    claimed = await store.claim_outbox(10)
    rows = await _rows(store, bid)
    assert len(claimed) == 0 and [s for s, _ in rows] == ["queued"] * 3
    assert all(nb is not None and nb > datetime.now(UTC) for _, nb in rows)
    other = await broadcast(service, "Hi", quiet_start="00:00", quiet_end="00:00")
    await service.send(other)
    await service.enqueue(other)
    assert len(await store.claim_outbox(10)) == 3  # an open window: sent at once, as before
