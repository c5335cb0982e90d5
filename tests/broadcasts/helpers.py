"""Shared helpers for broadcast tests: synthetic fans written straight into the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.audience.broadcasts import BroadcastService, new_broadcast
from bot.audience.segments import Segment
from bot.storage import Store
from bot.storage.tables import contacts

ALWAYS_OPEN = {"quiet_start": "00:00", "quiet_end": "00:00"}  # no quiet hours: clock-independent


def number(i: int) -> str:
    return f"+1415555{i:04d}"


async def add_fans(store: Store, fans: list[dict[str, Any]]) -> list[int]:
    """Insert fans ({phone, profile, subscription, subscribed_days_ago, replied_days_ago})."""
    at = datetime.now(UTC)

    def insert(conn: Any) -> list[int]:
        rows = [
            {
                "phone": f["phone"],
                "phone_hash": store.phone_hash(f["phone"]),
                "profile": f.get("profile", {}),
                "subscription": f.get("subscription", "subscribed"),
                "subscribed_at": at - timedelta(days=f.get("subscribed_days_ago", 1)),
                "last_inbound_at": (
                    at - timedelta(days=f["replied_days_ago"]) if "replied_days_ago" in f else None
                ),
                "created_at": at,
            }
            for f in fans
        ]
        result = conn.execute(
            contacts.insert().returning(contacts.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars())

    return await store.db.run(insert)


async def broadcast(
    service: BroadcastService, body: str, segment: Segment | None = None, **options: Any
) -> int:
    options = {**ALWAYS_OPEN, **options}
    spec = new_broadcast("test", body, segment or Segment("all"), default_rate=1000, **options)
    return await service.create(spec)
