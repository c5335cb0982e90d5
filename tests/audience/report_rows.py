"""A small, known history for the report tests: one A/B broadcast and what its ten fans did,
texts over a few days, hand-offs answered, a flow's funnel and two topics. Rows are written
straight into the tables the pipeline, the sender, the link redirect and the topic sweep
write, so every figure below is known by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.storage import Store
from bot.storage.broadcast_tables import broadcast_recipients, broadcasts
from bot.storage.engagement_tables import broadcast_variants, link_clicks, links
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    escalations,
    events,
    messages,
)
from bot.storage.topic_tables import topics

NAME = "Presale $5 <b>"  # a name the pictures must show as text, never as markup or math
# fan number (1-10) -> status of their broadcast text and error code
SENDS = {1: ("delivered", None), 2: ("delivered", None), 3: ("delivered", None),
         4: ("delivered", None), 5: ("delivered", None), 6: ("delivered", None),
         7: ("failed", 30007), 8: ("undelivered", 30005), 9: ("skipped", None),
         10: ("sent", None)}  # fmt: skip
VARIANT = {i: "A" if i <= 5 else "B" for i in SENDS}


@dataclass(frozen=True)
class History:
    broadcast_id: int
    sent_at: datetime  # when the broadcast's texts went out (two days ago)
    fans: dict[int, int]  # fan number -> contact id
    variants: dict[str, int]  # label -> variant id


def write_history(store: Store, now: datetime | None = None) -> History:
    now = now or datetime.now(UTC)
    t0 = (now - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    return store.db.run_sync(lambda conn: _write(conn, store, t0))


def _write(conn: Any, store: Store, t0: datetime) -> History:
    fans = {}
    for i in SENDS:
        phone = f"+1415555{i:04d}"
        fans[i] = conn.execute(contacts.insert().values(
            phone=phone, phone_hash=store.phone_hash(phone), profile={},
            subscription="unsubscribed" if i in (4, 5) else "subscribed",
            subscribed_at=t0 - timedelta(days=5), created_at=t0 - timedelta(days=5),
        ).returning(contacts.c.id)).scalar_one()  # fmt: skip
        conn.execute(
            consent_events.insert().values(
                contact_id=fans[i], action="opt_in", method="sms_yes", at=t0 - timedelta(days=5)
            )
        )
    bid = conn.execute(broadcasts.insert().values(
        name=NAME, body="Presale Tue 10am https://tix.example/nova", segment={}, status="completed",
        rate=10.0, created_at=t0, started_at=t0, finished_at=t0 + timedelta(minutes=5),
    ).returning(broadcasts.c.id)).scalar_one()  # fmt: skip
    variants = {
        label: conn.execute(broadcast_variants.insert().values(
            broadcast_id=bid, label=label, body=f"Presale ({label})", winner=label == "B",
        ).returning(broadcast_variants.c.id)).scalar_one()
        for label in ("A", "B")
    }  # fmt: skip
    copies = {}
    for i, (status, code) in SENDS.items():
        conn.execute(
            broadcast_recipients.insert().values(
                broadcast_id=bid, contact_id=fans[i], variant_id=variants[VARIANT[i]], created_at=t0
            )
        )
        copies[i] = conn.execute(messages.insert().values(
            contact_id=fans[i], direction="out", body="Presale", kind="broadcast", status=status,
            broadcast_id=bid, variant_id=variants[VARIANT[i]], error_code=code, created_at=t0,
            error="frequency cap" if status == "skipped" else None,
            sent_at=None if status == "skipped" else t0 + timedelta(seconds=i),
        ).returning(messages.c.id)).scalar_one()  # fmt: skip
    # clicks: fans 1 (twice on one link), 2 (two links), 6; fan 3's link only previewed
    for i, kinds in {1: ["human"], 2: ["human", "human"], 3: ["preview"], 6: ["human"]}.items():
        for n, kind in enumerate(kinds):
            link = conn.execute(links.insert().values(
                code=f"c{i}x{n}abcdef", url="https://tix.example/nova", message_id=copies[i],
                contact_id=fans[i], broadcast_id=bid, variant_id=variants[VARIANT[i]],
                created_at=t0,
            ).returning(links.c.id)).scalar_one()  # fmt: skip
            conn.execute(link_clicks.insert().values(
                link_id=link, contact_id=fans[i], first_at=t0 + timedelta(minutes=3),
                clicks=2 if i == 1 else 1, agent_kind=kind))  # fmt: skip
    # replies linked to the broadcast by the pipeline: fans 1, 4 (twice), 6; fan 2 the next day, unlinked
    inbound = [(1, 1, "processed", bid), (4, 2, "processed", bid), (4, 3, "processed", bid),
               (6, 2, "held", bid), (2, 26, "processed", None)]  # fmt: skip
    for i, hours, status, linked in inbound:
        conn.execute(messages.insert().values(
            contact_id=fans[i], direction="in", body="?", kind="sms", status=status,
            broadcast_id=linked, created_at=t0 + timedelta(hours=hours)))  # fmt: skip
    # fan 5 opts out within the day (counted), fan 4 the day after (not)
    for i, hours in ((5, 1), (4, 30)):
        conn.execute(consent_events.insert().values(
            contact_id=fans[i], action="opt_out", method="sms_keyword",
            at=t0 + timedelta(hours=hours)))  # fmt: skip
    # hand-offs: fan 6 two hours after (counted, answered in 10 min), fan 1 the day before
    for i, hours, answered_min in ((6, 2, 10), (1, -20, 30)):
        conv = conn.execute(conversations.insert().values(
            contact_id=fans[i], status="open", dialogue={}, updated_at=t0,
        ).returning(conversations.c.id)).scalar_one()  # fmt: skip
        at = t0 + timedelta(hours=hours)
        conn.execute(
            escalations.insert().values(
                contact_id=fans[i],
                conversation_id=conv,
                reason="fan_asked",
                priority="normal",
                guesses=[],
                created_at=at,
                first_response_at=at + timedelta(minutes=answered_min),
            )
        )
    # a flow funnel: fans 1-3 start `tour`, 1-2 reach ask_city, 1 reaches show_dates
    for i, steps in {1: ["ask_city", "show_dates"], 2: ["ask_city"], 3: []}.items():
        at = t0 + timedelta(hours=3)
        conn.execute(events.insert().values(
            contact_id=fans[i], type="flow_started", data={"flow": "tour", "trigger": "intent"},
            flow="tour", at=at))  # fmt: skip
        for step in steps:
            conn.execute(events.insert().values(
                contact_id=fans[i], type="step", data={"flow": "tour", "step": step}, flow="tour",
                step=step, at=at))  # fmt: skip
    for label, size in (("denver show tonight", 5), ("refund my tickets", 2)):
        conn.execute(topics.insert().values(
            status="open", label=label, size=size, broadcast_id=bid, created_at=t0,
            updated_at=t0))  # fmt: skip
    return History(bid, t0, fans, variants)


def count(store: Store, table: sa.Table) -> int:
    return store.db.run_sync(
        lambda conn: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    )
