"""Per-fan records for data rights and audits: the consent ledger, export, erasure, web signup.

Units of work over the engine's `Store`. Erasure keeps the consent ledger's facts (what was
agreed to, how and when) but not who: numbers, IPs, user agents, profile, slots and message
bodies go; a keyed hash of the number stays in `suppressions`, so an opt-out survives erasure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain import ConsentChange
from bot.errors import Conflict, NotFound
from bot.messages import OutboundSms
from bot.storage import link_store, review_store, tag_store, topic_store
from bot.storage.broadcast_tables import broadcast_recipients
from bot.storage.store import Store
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    escalations,
    events,
    messages,
    suppressions,
)

LEDGER_COLUMNS = ("id", "contact_id", "action", "method", "text_shown", "source_number",
                  "ip", "user_agent", "at")  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


class FanRecords:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # ---- the consent ledger --------------------------------------------------------------

    async def ledger(self, contact_id: int) -> list[dict[str, Any]]:
        def rows(conn: Connection) -> list[dict[str, Any]]:
            found = conn.execute(
                sa.select(consent_events)
                .where(consent_events.c.contact_id == contact_id)
                .order_by(consent_events.c.id)
            ).all()
            return [dict(r._mapping) for r in found]

        return await self.db.run(rows)

    def iter_ledger(
        self, since: datetime | None = None, batch: int = 5_000
    ) -> Iterator[dict[str, Any]]:
        """Every ledger row in id order, streamed in batches (synchronous: for the CSV export)."""
        last = 0
        while True:
            query = sa.select(consent_events).where(consent_events.c.id > last)
            if since is not None:
                query = query.where(consent_events.c.at >= since)
            chunk = self.db.run_sync(
                lambda c, q=query: c.execute(q.order_by(consent_events.c.id).limit(batch)).all()
            )
            if not chunk:
                return
            for row in chunk:
                yield dict(row._mapping)
            last = chunk[-1].id

    # ---- web signup ----------------------------------------------------------------------

    async def contact(self, contact_id: int) -> Any:
        row = await self.db.run(
            lambda c: c.execute(sa.select(contacts).where(contacts.c.id == contact_id)).first()
        )
        if row is None or row.phone is None:
            raise NotFound("no such fan")
        return row

    async def subscribe_from_web(
        self,
        contact_id: int,
        profile: dict[str, Any],
        change: ConsentChange | None,
        ip: str | None,
        user_agent: str | None,
        welcome: list[OutboundSms],
        link_issued_at: datetime | None = None,
    ) -> list[int]:
        """Profile, consent (ledger row with IP and user agent) and welcome texts: one commit.

        With `link_issued_at`, the signup link is spent in the same commit (SpentLink if it
        was used already or the fan opted out since it was issued: nothing is written).

        A STOP committing at the same moment is serialised with this: the fan's rows are locked
        first (`lock_fan`), so the ledger is read after a STOP in flight has committed, and a
        STOP that comes later waits for this commit and then wins."""

        def go(conn: Connection) -> list[int]:
            at = now()
            row = lock_fan(conn, contact_id)
            if row is None or row.erased_at is not None:
                raise NotFound("no such fan")
            decided = change
            if change is not None and change.action in ("opt_in", "resubscribe"):
                action = "resubscribe" if row.subscription == "unsubscribed" else "opt_in"
                decided = ConsentChange(action, change.method, change.text_shown)
            if link_issued_at is not None:
                self.store._claim_signup_link(conn, contact_id, link_issued_at)
            self.store._update_profile(conn, contact_id, profile)
            if decided is not None:
                self.store._change_consent(conn, contact_id, decided, at, None, ip, user_agent)
            queued = self.store._enqueue(conn, contact_id, welcome, at, None)
            # the signup answered the opt-in question: end a flow still waiting for YES
            dialogue = conn.execute(
                sa.select(conversations.c.dialogue).where(conversations.c.contact_id == contact_id)
            ).scalar()
            if dialogue and dialogue.get("stack"):
                conn.execute(
                    conversations.update()
                    .where(conversations.c.contact_id == contact_id)
                    .values(dialogue={**dialogue, "stack": []})
                )
            return [q.outbox_id for q in queued]

        return await self.db.run(go)

    # ---- export and erasure --------------------------------------------------------------

    async def export(self, phone: str) -> dict[str, Any]:
        return await self.db.run(self._export, phone)

    def _export(self, conn: Connection, phone: str) -> dict[str, Any]:
        c = _by_phone(conn, phone)

        def rows(table: sa.Table, *where: Any) -> list[dict[str, Any]]:
            return [
                dict(r._mapping)
                for r in conn.execute(sa.select(table).where(*where).order_by(table.c.id))
            ]

        return {
            "contact": {k: v for k, v in c._mapping.items() if k != "phone_hash"},
            "conversation": rows(conversations, conversations.c.contact_id == c.id),
            "consent": rows(consent_events, consent_events.c.contact_id == c.id),
            "messages": rows(messages, messages.c.contact_id == c.id),
            "events": rows(events, events.c.contact_id == c.id),
            "escalations": rows(escalations, escalations.c.contact_id == c.id),
            "broadcasts": [
                r.broadcast_id
                for r in conn.execute(
                    sa.select(broadcast_recipients.c.broadcast_id).where(
                        broadcast_recipients.c.contact_id == c.id
                    )
                )
            ],
            "topics": topic_store.fan_topic_data(conn, c.id),  # texts, replies, labels
            "bot_answers": review_store.fan_answer_data(conn, c.id),  # texts, corrections
            "tags": tag_store.fan_tag_rows(conn, c.id),  # with their source and time
            "links": link_store.fan_link_rows(conn, c.id),  # short links sent, their clicks
        }

    async def erase(self, phone: str) -> int:
        return await self.db.run(self._erase, phone)

    def _erase(self, conn: Connection, phone: str) -> int:
        c = _by_phone(conn, phone)
        lock_fan(conn, c.id)  # a writer in flight commits first, and is erased with the rest
        at = now()
        digest = self.store.phone_hash(phone)
        exists = conn.execute(
            sa.select(suppressions.c.phone_hash).where(suppressions.c.phone_hash == digest)
        ).first()
        if exists is None:
            conn.execute(suppressions.insert().values(phone_hash=digest, reason="erased", at=at))
        # anything still queued for the fan is dropped before their number disappears
        conn.execute(
            messages.update()
            .where(messages.c.contact_id == c.id, messages.c.status.in_(["queued", "paused"]))
            .values(status="cancelled", error="fan data erased")
        )
        conn.execute(
            messages.update()
            .where(messages.c.contact_id == c.id)
            .values(body="", media_urls=[], from_number=_unless(messages.c.from_number, "in"),
                    to_number=_unless(messages.c.to_number, "out"), error=None)
        )  # fmt: skip
        conn.execute(events.update().where(events.c.contact_id == c.id).values(data={}))
        topic_store.erase_fan_topics(conn, c.id)  # texts, vectors, agents' labels on turns
        review_store.erase_fan_answers(conn, c.id, at)  # answered texts and their vectors
        link_store.erase_fan_links(conn, c.id)  # clicks stay counted, tied to nobody
        tag_store.erase_fan_tags(conn, c.id)  # (the profile's copy goes with the profile)
        conn.execute(
            conversations.update().where(conversations.c.contact_id == c.id).values(dialogue={})
        )
        conn.execute(
            consent_events.update()
            .where(consent_events.c.contact_id == c.id)
            .values(ip=None, user_agent=None)
        )
        # the contact's own hash moves aside: the suppression row is the one record of the
        # number, and a new text from it creates a fresh contact that starts unsubscribed
        conn.execute(
            contacts.update()
            .where(contacts.c.id == c.id)
            .values(phone=None, phone_hash=f"erased:{c.id}", profile={},
                    subscription="unsubscribed", erased_at=at)
        )  # fmt: skip
        return c.id


def lock_fan(conn: Connection, contact_id: int) -> Any:
    """Lock the fan's conversation and contact rows for this transaction (in the order a turn
    writes them, so the two never deadlock) and return the contact as it is now.

    PostgreSQL: SELECT ... FOR UPDATE; a transaction already writing them (a STOP's turn) is
    waited for, and what is read afterwards includes it. SQLite: a first write takes the
    database's write lock (the driver would otherwise begin the transaction only at the first
    write, after our reads)."""
    c = contacts.c
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(conversations.c.id)
            .where(conversations.c.contact_id == contact_id)
            .with_for_update()
        ).all()
        return conn.execute(sa.select(contacts).where(c.id == contact_id).with_for_update()).first()
    conn.execute(contacts.update().where(c.id == contact_id).values(id=c.id))
    return conn.execute(sa.select(contacts).where(c.id == contact_id)).first()


def _unless(column: Any, direction: str) -> Any:
    """The fan's side of a message goes (`from` of inbound, `to` of outbound); ours stays."""
    return sa.case((messages.c.direction == direction, sa.null()), else_=column)


def _by_phone(conn: Connection, phone: str) -> Any:
    row = conn.execute(sa.select(contacts).where(contacts.c.phone == phone)).first()
    if row is None:
        raise NotFound("no fan with that number")
    if row.erased_at is not None:
        raise Conflict("this fan's data was already erased")
    return row
