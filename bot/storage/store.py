"""Units of work over the schema: each public coroutine is one transaction, one database trip."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.domain import (
    ConsentChange,
    Contact,
    PendingText,
    QueuedReply,
    Recorded,
    TurnContext,
    TurnRecord,
)
from bot.messages import DeliveryReport, InboundSms, OutboundSms
from bot.outbound import OutboxItem, SendResult
from bot.storage.db import Database
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    escalations,
    events,
    messages,
    suppressions,
)

# a delivery report never moves a message backwards (callbacks can arrive out of order)
_STATUS_RANK = {
    "queued": 0, "sending": 1, "twiml": 2, "sent": 2, "undelivered": 3,
    "failed": 3, "delivered": 4, "read": 5,
}  # fmt: skip
CARRIER_OPT_OUT = 21610
ENGAGEMENT_RESOLUTION = timedelta(hours=1)


def now() -> datetime:
    return datetime.now(UTC)


class Store:
    """The persistence layer. Returns domain types from `bot.domain`; never leaks rows."""

    def __init__(self, db: Database, *, hash_key: bytes, reply_window_h: float = 24.0):
        self.db = db
        self._q = _Prepared(self._insert)
        self._hash_key = hash_key
        self.reply_window = timedelta(hours=reply_window_h)

    @classmethod
    def open(
        cls, url: str, *, hash_key: bytes, migrate: bool = True, reply_window_h: float = 24.0
    ) -> Store:
        db = Database(url)
        if migrate:
            db.migrate()
        return cls(db, hash_key=hash_key, reply_window_h=reply_window_h)

    def close(self) -> None:
        self.db.close()

    def phone_hash(self, phone: str) -> str:
        # keyed, so a leaked suppression list cannot be reversed by enumerating numbers
        return hmac.new(self._hash_key, phone.encode(), hashlib.sha256).hexdigest()

    def _insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # ---- steps 1 and 4: record the inbound text, load what the turn reads -------------------

    async def begin_turn(self, msg: InboundSms) -> tuple[Recorded, TurnContext | None]:
        """Record the text (idempotent) and load the fan's turn context: one trip, one commit.

        The caller holds the fan's lock (keyed by phone number, known before recording), so
        nothing can change between the two. No context comes back for an answered duplicate.
        """
        return await self.db.run(self._begin_turn, msg)

    def _begin_turn(self, conn: Connection, msg: InboundSms) -> tuple[Recorded, TurnContext | None]:
        recorded, row = self._record(conn, msg)
        if recorded.duplicate and recorded.answered:
            return recorded, None
        return recorded, self._load_turn(conn, recorded.contact.id, row)

    async def record_inbound(self, msg: InboundSms) -> Recorded:
        return await self.db.run(self._record_inbound, msg)

    def _record_inbound(self, conn: Connection, msg: InboundSms) -> Recorded:
        return self._record(conn, msg)[0]

    def _record(self, conn: Connection, msg: InboundSms) -> tuple[Recorded, Any]:
        """Record the text; also return the fan's contact+conversation row, read on the way."""
        q = self._q
        row = conn.execute(q.contact_and_conversation_by_phone, {"phone": msg.sender}).first()
        if row is None:
            contact, is_new = self._contact_for(conn, msg.sender, msg.received_at)
        else:
            contact, is_new = _contact(row), False
        inserted = conn.execute(
            q.insert_inbound,
            {"contact_id": contact.id, "channel_id": msg.channel_id, "from_number": msg.sender,
             "to_number": msg.recipient, "body": msg.body, "media_urls": list(msg.media_urls),
             "created_at": msg.received_at},
        ).scalar()  # fmt: skip
        if inserted is None:
            existing = conn.execute(q.message_by_channel, {"channel_id": msg.channel_id}).one()
            answered = existing.status != "received"
            return Recorded(contact, existing.id, True, False, answered=answered), row
        last = row.last_inbound_at if row is not None else None
        if last is None or _aware(last) < msg.received_at - ENGAGEMENT_RESOLUTION:
            # kept to the hour for engagement segments; not a write on every text
            conn.execute(q.touch_contact, {"cid": contact.id, "at": msg.received_at})
        return Recorded(contact, inserted, duplicate=False, is_new_contact=is_new), row

    def _contact_for(self, conn: Connection, phone: str, at: datetime) -> tuple[Contact, bool]:
        row = conn.execute(self._q.contact_by_phone, {"phone": phone}).first()
        if row is not None:
            return _contact(row), False
        q, phone_hash = self._q, self.phone_hash(phone)
        # a number that was erased keeps its opt-out: the suppression list survives erasure
        suppressed = conn.execute(q.suppressed, {"phone_hash": phone_hash}).first() is not None
        new_id = conn.execute(
            q.insert_contact,
            {"phone": phone, "phone_hash": phone_hash, "created_at": at,
             "subscription": "unsubscribed" if suppressed else "pending"},
        ).scalar()  # fmt: skip
        if new_id is None:  # another process created it in the meantime
            row = conn.execute(q.contact_by_phone, {"phone": phone}).one()
            return _contact(row), False
        conn.execute(q.insert_conversation, {"cid": new_id, "at": at})
        row = conn.execute(q.contact_by_id, {"cid": new_id}).one()
        return _contact(row), not suppressed

    async def load_turn(self, contact_id: int) -> TurnContext:
        return await self.db.run(self._load_turn, contact_id)

    def _load_turn(self, conn: Connection, contact_id: int, row: Any = None) -> TurnContext:
        q = self._q
        if row is None:
            row = conn.execute(q.contact_and_conversation, {"cid": contact_id}).one()
        pending = conn.execute(q.pending_texts, {"cid": contact_id}).all()
        broadcast = conn.execute(
            q.last_broadcast, {"cid": contact_id, "since": now() - self.reply_window}
        ).scalar()
        return TurnContext(
            contact=_contact(row),
            conversation_id=row.conv_id,
            status=row.conv_status,
            dialogue=row.dialogue or {},
            pending=tuple(
                PendingText(r.id, r.body, len(r.media_urls or ()), r.created_at) for r in pending
            ),
            last_broadcast_id=broadcast,
        )

    async def replies_to(self, message_id: int) -> list[QueuedReply]:
        """The replies already produced for an inbound text (for duplicates and late waiters)."""
        return await self.db.run(self._replies_to, message_id)

    def _replies_to(self, conn: Connection, message_id: int) -> list[QueuedReply]:
        rows = conn.execute(
            sa.select(messages)
            .where(messages.c.reply_to == message_id, messages.c.direction == "out")
            .order_by(messages.c.id)
        ).all()
        return [QueuedReply(r.id, _outbound(r), r.status) for r in rows]

    async def message_status(self, message_id: int) -> str:
        return await self.db.run(
            lambda c: c.execute(
                sa.select(messages.c.status).where(messages.c.id == message_id)
            ).scalar_one()
        )

    # ---- step 9: write what the turn decided ---------------------------------------------

    async def finish_turn(self, rec: TurnRecord) -> list[QueuedReply]:
        return await self.db.run(self._finish_turn, rec)

    def _finish_turn(self, conn: Connection, rec: TurnRecord) -> list[QueuedReply]:
        at = now()
        q = self._q
        if rec.events:
            conn.execute(
                q.insert_events,
                [
                    {"contact_id": rec.contact_id, "message_id": rec.message_id,
                     "type": kind, "data": data, "at": at}
                    for kind, data in rec.events
                ],
            )  # fmt: skip
        conv_values: dict[str, Any] = {"conv_id": rec.conversation_id, "updated_at": at}
        if rec.dialogue is not None:
            conv_values["dialogue"] = rec.dialogue
        if rec.status is not None:
            conv_values["status"] = rec.status
        conn.execute(q.update_conversation, conv_values)  # SET takes the keys given
        if rec.profile_updates:
            self._update_profile(conn, rec.contact_id, rec.profile_updates)
        if rec.consent is not None:
            self._change_consent(conn, rec.contact_id, rec.consent, at, rec.message_id)
        if rec.escalation is not None:
            conn.execute(
                escalations.insert().values(
                    contact_id=rec.contact_id, conversation_id=rec.conversation_id,
                    message_id=rec.message_id, reason=rec.escalation.reason,
                    priority=rec.escalation.priority,
                    guesses=[list(g) for g in rec.escalation.guesses], created_at=at,
                )
            )  # fmt: skip
        conn.execute(
            q.set_message_status, {"mid": rec.message_id, "new_status": rec.inbound_status}
        )
        inline = rec.inline_until is not None and now() <= rec.inline_until
        return self._enqueue(
            conn, rec.contact_id, rec.replies, at, rec.hold_replies_until, rec.message_id,
            status="twiml" if inline else "queued",
        )  # fmt: skip

    def _enqueue(
        self,
        conn: Connection,
        contact_id: int | None,
        replies: Sequence[OutboundSms],
        at: datetime,
        not_before: datetime | None,
        reply_to: int | None = None,
        status: str = "queued",
        **extra: Any,
    ) -> list[QueuedReply]:
        if not replies:
            return []
        rows = [
            {"contact_id": contact_id, "direction": "out", "to_number": r.to,
             "from_number": r.sender, "body": r.body, "media_urls": list(r.media_urls),
             "kind": r.kind, "status": status, "reply_to": reply_to,
             "not_before": not_before, "created_at": at, **extra}
            for r in replies
        ]  # fmt: skip
        ids = conn.execute(self._q.insert_outbound, rows).scalars()
        return [QueuedReply(i, r, status) for i, r in zip(ids, replies, strict=True)]

    def _update_profile(self, conn: Connection, contact_id: int, updates: dict[str, Any]) -> None:
        profile = conn.execute(
            sa.select(contacts.c.profile).where(contacts.c.id == contact_id)
        ).scalar_one()
        merged = {**(profile or {}), **updates}
        conn.execute(contacts.update().where(contacts.c.id == contact_id).values(profile=merged))

    def _change_consent(
        self,
        conn: Connection,
        contact_id: int,
        change: ConsentChange,
        at: datetime,
        message_id: int | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        q = self._q
        subscribed = change.action in ("opt_in", "resubscribe")
        if subscribed:
            conn.execute(q.subscribe, {"cid": contact_id, "at": at})
        else:
            conn.execute(q.unsubscribe, {"cid": contact_id})
        source = None
        if message_id is not None:
            source = conn.execute(q.message_to_number, {"mid": message_id}).scalar()
        conn.execute(
            q.insert_consent,
            {"contact_id": contact_id, "action": change.action, "method": change.method,
             "text_shown": change.text_shown, "source_number": source, "ip": ip,
             "user_agent": user_agent, "at": at},
        )  # fmt: skip
        if not subscribed:  # STOP stops everything already queued, except the one confirmation
            conn.execute(q.cancel_queued, {"cid": contact_id})

    # ---- the outbox (bot.outbound.OutboxStore) -------------------------------------------
    # Set-based: a claim is one UPDATE ... RETURNING, results one executemany (SQLite) or one
    # UPDATE ... FROM (VALUES ...) (PostgreSQL). While a row is `sending`, `sent_at` holds the
    # claim time: crash recovery (`stale_sending`) ages rows by it.

    async def claim_outbox(self, limit: int) -> list[OutboxItem]:
        return await self.db.run(self._claim_outbox, limit)

    def _claim_outbox(self, conn: Connection, limit: int) -> list[OutboxItem]:
        at = now()
        m = messages.c
        pick = (
            sa.select(m.id)
            .where(m.direction == "out", m.status == "queued",
                   sa.or_(m.not_before.is_(None), m.not_before <= at))
            .order_by(m.id)
            .limit(limit)
        )  # fmt: skip
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        rows = conn.execute(
            messages.update()
            .where(m.id.in_(pick.scalar_subquery()))
            .values(status="sending", attempts=m.attempts + 1, sent_at=at)
            .returning(*_CLAIMED, _SUBSCRIPTION)
        ).all()
        # checked again at send time: a fan who opted out since the row was queued gets nothing
        gone = [r.id for r in rows if r.subscription == "unsubscribed" and r.kind != "compliance"]
        if gone:
            conn.execute(
                messages.update()
                .where(m.id.in_(gone))
                .values(status="cancelled", error="fan opted out", sent_at=None)
            )
        rows.sort(key=lambda r: r.id)
        return [_outbox_item(r, at) for r in rows if r.id not in gone]

    async def queue_outbound(self, replies: Sequence[OutboundSms]) -> list[int]:
        """Queue texts outside a turn (system texts, benchmarks, tests): their outbox ids."""
        queued = await self.db.run(lambda c: self._enqueue(c, None, replies, now(), None))
        return [q.outbox_id for q in queued]

    async def outbox_counts(self) -> dict[str, int]:
        """Outbound messages by status: for monitoring, benchmarks and tests."""

        def count(conn: Connection) -> dict[str, int]:
            m = messages.c
            rows = conn.execute(
                sa.select(m.status, sa.func.count()).where(m.direction == "out").group_by(m.status)
            ).all()
            return {status: n for status, n in rows}

        return await self.db.run(count)

    async def release_held(self, outbox_ids: Sequence[int]) -> None:
        """Held replies, or inline ones whose webhook answer ran out of time: due now."""
        if not outbox_ids:
            return

        def release(conn: Connection) -> None:
            conn.execute(
                messages.update()
                .where(
                    messages.c.id.in_(list(outbox_ids)),
                    messages.c.status.in_(("queued", "twiml")),
                )
                .values(status="queued", not_before=None)
            )

        await self.db.run(release)

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        """(outbox id, provider sid, segments, encoding) per sent row: one statement for all."""
        if results:
            await self.db.run(self._outbox_sent, results)

    def _outbox_sent(self, conn: Connection, results: Sequence[tuple[int, str, int, str]]) -> None:
        at = now()
        if conn.dialect.name != "postgresql":
            conn.execute(
                _MARK_SENT,
                [{"oid": i, "sid": s, "seg": n, "enc": e, "at": at} for i, s, n, e in results],
            )
            return
        sent = sa.values(
            sa.column("oid", sa.Integer), sa.column("sid", sa.String),
            sa.column("seg", sa.Integer), sa.column("enc", sa.String), name="sent",
        ).data([tuple(r) for r in results])  # fmt: skip
        conn.execute(
            messages.update()
            .where(messages.c.id == sent.c.oid, messages.c.status == "sending")
            .values(status="sent", channel_id=sent.c.sid, segments=sent.c.seg,
                    encoding=sent.c.enc, sent_at=at, error=None)
        )  # fmt: skip

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None:
        def mark(conn: Connection) -> None:
            conn.execute(
                messages.update()
                .where(messages.c.id == outbox_id)
                .values(status="queued", not_before=now() + timedelta(seconds=delay_s),
                        error=error[:500], sent_at=None)
            )  # fmt: skip

        await self.db.run(mark)

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        def mark(conn: Connection) -> None:
            contact_id = conn.execute(
                messages.update()
                .where(messages.c.id == outbox_id)
                .values(status="failed", error_code=code, error=error[:500], sent_at=None)
                .returning(messages.c.contact_id)
            ).scalar()
            if code == CARRIER_OPT_OUT and contact_id is not None:
                change = ConsentChange("opt_out", "carrier", "Twilio error 21610")
                self._change_consent(conn, contact_id, change, now())

        await self.db.run(mark)

    async def stale_sending(self, older_than_s: float, limit: int = 500) -> list[OutboxItem]:
        """Rows claimed more than `older_than_s` ago and still `sending`: a sender died with them.

        Each item carries its claim time (`claimed_at`) for the provider lookup.
        """

        def stale(conn: Connection) -> list[OutboxItem]:
            m = messages.c
            cutoff = now() - timedelta(seconds=older_than_s)
            rows = conn.execute(
                sa.select(*_CLAIMED, m.sent_at)
                .where(m.direction == "out", m.status == "sending",
                       sa.or_(m.sent_at.is_(None), m.sent_at <= cutoff))
                .order_by(m.id)
                .limit(limit)
            ).all()  # fmt: skip
            return [_outbox_item(r, _aware(r.sent_at) if r.sent_at else None) for r in rows]

        return await self.db.run(stale)

    async def settle_sending(
        self, lookups: Sequence[tuple[OutboxItem, Sequence[SendResult]]]
    ) -> tuple[int, int]:
        """Settle stale `sending` rows from what the provider has: (marked sent, re-queued).

        Each row comes with the provider's matching messages, oldest first. The first one whose
        SID no other row holds is ours: sent. None left: the provider never accepted the row, so
        it goes back to `queued` and re-sending cannot duplicate it. Both only touch a row still
        in the claim that was looked up (same status and attempts), so a row re-claimed since
        by a live sender is left alone.
        """
        if not lookups:
            return 0, 0
        return await self.db.run(self._settle_sending, lookups)

    def _settle_sending(
        self, conn: Connection, lookups: Sequence[tuple[OutboxItem, Sequence[SendResult]]]
    ) -> tuple[int, int]:
        sids = [r.sid for _, found in lookups for r in found]
        taken = set(
            conn.execute(sa.select(messages.c.channel_id).where(messages.c.channel_id.in_(sids)))
            .scalars()
            .all()
        ) if sids else set()  # fmt: skip
        sent, requeue = [], []
        for item, found in lookups:
            mine = next((r for r in found if r.sid not in taken), None)
            if mine is None:
                requeue.append({"oid": item.id, "tries": item.attempts})
                continue
            taken.add(mine.sid)
            sent.append({"oid": item.id, "tries": item.attempts, "sid": mine.sid,
                         "seg": mine.segments, "enc": mine.encoding or "", "at": now()})  # fmt: skip
        if sent:
            conn.execute(_SETTLE_SENT, sent)
        if requeue:
            conn.execute(_REQUEUE, requeue)
        return len(sent), len(requeue)

    async def apply_delivery_report(self, report: DeliveryReport) -> bool:
        return await self.db.run(self._apply_report, report)

    def _apply_report(self, conn: Connection, report: DeliveryReport) -> bool:
        row = conn.execute(
            sa.select(messages.c.id, messages.c.status, messages.c.contact_id).where(
                messages.c.channel_id == report.channel_id, messages.c.direction == "out"
            )
        ).first()
        if row is None:
            return False
        if _STATUS_RANK.get(report.status, 0) >= _STATUS_RANK.get(row.status, 0):
            conn.execute(
                messages.update()
                .where(messages.c.id == row.id)
                .values(status=report.status, error_code=report.error_code)
            )
        if report.error_code == CARRIER_OPT_OUT and row.contact_id is not None:
            change = ConsentChange("opt_out", "carrier", "Twilio error 21610")
            self._change_consent(conn, row.contact_id, change, now())
        return True

    # ---- queries used by the CLI, tests and the inbox ------------------------------------

    async def contact_by_phone(self, phone: str) -> Contact | None:
        def get(conn: Connection) -> Contact | None:
            row = conn.execute(sa.select(contacts).where(contacts.c.phone == phone)).first()
            return _contact(row) if row else None

        return await self.db.run(get)

    async def conversation_status(self, contact_id: int) -> str:
        return await self.db.run(
            lambda c: c.execute(
                sa.select(conversations.c.status).where(conversations.c.contact_id == contact_id)
            ).scalar_one()
        )

    async def events_for(self, contact_id: int) -> list[tuple[str, dict[str, Any]]]:
        def get(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
            rows = conn.execute(
                sa.select(events.c.type, events.c.data)
                .where(events.c.contact_id == contact_id)
                .order_by(events.c.id)
            ).all()
            return [(r.type, r.data) for r in rows]

        return await self.db.run(get)

    async def set_subscription(self, contact_id: int, change: ConsentChange) -> None:
        await self.db.run(lambda c: self._change_consent(c, contact_id, change, now()))


class _Prepared:
    """The hot path's statements, built once: building a statement costs more than running it."""

    def __init__(self, insert: Any):
        b = sa.bindparam
        m = messages.c
        self.contact_by_phone = sa.select(contacts).where(contacts.c.phone == b("phone"))
        self.insert_inbound = (
            insert(messages)
            .values(
                contact_id=b("contact_id"), direction="in", channel_id=b("channel_id"),
                from_number=b("from_number"), to_number=b("to_number"), body=b("body"),
                media_urls=b("media_urls", type_=m.media_urls.type), kind="sms",
                status="received", created_at=b("created_at"),
            )
            .on_conflict_do_nothing(index_elements=["channel_id"])
            .returning(m.id)
        )  # fmt: skip
        self.message_by_channel = sa.select(m.id, m.status).where(m.channel_id == b("channel_id"))
        self.touch_contact = (
            contacts.update().where(contacts.c.id == b("cid")).values(last_inbound_at=b("at"))
        )
        with_conversation = sa.select(
            contacts, conversations.c.id.label("conv_id"),
            conversations.c.status.label("conv_status"), conversations.c.dialogue,
        ).join(conversations, conversations.c.contact_id == contacts.c.id)  # fmt: skip
        self.contact_and_conversation = with_conversation.where(contacts.c.id == b("cid"))
        self.contact_and_conversation_by_phone = with_conversation.where(
            contacts.c.phone == b("phone")
        )
        self.pending_texts = (
            sa.select(m.id, m.body, m.media_urls, m.created_at)
            .where(m.contact_id == b("cid"), m.direction == "in", m.status == "received")
            .order_by(m.id)
        )
        self.last_broadcast = (
            sa.select(m.broadcast_id)
            .where(m.contact_id == b("cid"), m.direction == "out", m.kind == "broadcast",
                   m.created_at >= b("since"))
            .order_by(m.id.desc())
            .limit(1)
        )  # fmt: skip
        self.suppressed = sa.select(suppressions.c.reason).where(
            suppressions.c.phone_hash == b("phone_hash")
        )
        self.insert_contact = (
            insert(contacts)
            .values(phone=b("phone"), phone_hash=b("phone_hash"), profile={},
                    subscription=b("subscription"), created_at=b("created_at"))
            .on_conflict_do_nothing()
            .returning(contacts.c.id)
        )  # fmt: skip
        self.insert_conversation = conversations.insert().values(
            contact_id=b("cid"), status="bot", dialogue={}, updated_at=b("at")
        )
        self.contact_by_id = sa.select(contacts).where(contacts.c.id == b("cid"))
        self.subscribe = (
            contacts.update()
            .where(contacts.c.id == b("cid"))
            .values(subscription="subscribed", subscribed_at=b("at"))
        )
        self.unsubscribe = (
            contacts.update().where(contacts.c.id == b("cid")).values(subscription="unsubscribed")
        )
        self.message_to_number = sa.select(m.to_number).where(m.id == b("mid"))
        self.insert_consent = consent_events.insert()
        self.cancel_queued = (
            messages.update()
            .where(m.contact_id == b("cid"), m.direction == "out", m.status == "queued",
                   m.kind != "compliance")
            .values(status="cancelled", error="fan opted out")
        )  # fmt: skip
        self.insert_events = events.insert()
        self.update_conversation = conversations.update().where(conversations.c.id == b("conv_id"))
        self.set_message_status = (
            messages.update().where(m.id == b("mid")).values(status=b("new_status"))
        )
        self.insert_outbound = messages.insert().returning(m.id, sort_by_parameter_order=True)


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _contact(row: Any) -> Contact:
    return Contact(
        id=row.id,
        phone=row.phone,
        profile=dict(row.profile or {}),
        subscription=row.subscription,
        created_at=row.created_at,
        subscribed_at=row.subscribed_at,
    )


def _outbound(row: Any) -> OutboundSms:
    return OutboundSms(
        to=row.to_number or "",
        body=row.body,
        media_urls=tuple(row.media_urls or ()),
        sender=row.from_number,
        kind=row.kind,
    )


# ---- the outbox's statements (built once; used by the outbox section of Store) -------------

_CLAIMED = (
    messages.c.id, messages.c.contact_id, messages.c.to_number, messages.c.from_number,
    messages.c.body, messages.c.media_urls, messages.c.attempts, messages.c.kind,
)  # fmt: skip
_SUBSCRIPTION = (
    sa.select(contacts.c.subscription)
    .where(contacts.c.id == messages.c.contact_id)
    .scalar_subquery()
    .label("subscription")
)
_b = sa.bindparam
_MARK_SENT = (
    messages.update()
    .where(messages.c.id == _b("oid"), messages.c.status == "sending")
    .values(status="sent", channel_id=_b("sid"), segments=_b("seg"), encoding=_b("enc"),
            sent_at=_b("at"), error=None)
)  # fmt: skip
_IN_CLAIM = (messages.c.id == _b("oid"), messages.c.status == "sending",
             messages.c.attempts == _b("tries"))  # fmt: skip
_SETTLE_SENT = (
    messages.update()
    .where(*_IN_CLAIM)
    .values(status="sent", channel_id=_b("sid"), segments=_b("seg"), encoding=_b("enc"),
            sent_at=_b("at"), error=None)
)  # fmt: skip
_REQUEUE = (
    messages.update()
    .where(*_IN_CLAIM)
    .values(status="queued", not_before=None, sent_at=None,
            error="recovered: the provider never accepted it")
)  # fmt: skip


def _outbox_item(row: Any, claimed_at: datetime | None) -> OutboxItem:
    return OutboxItem(
        id=row.id, message_id=row.id, contact_id=row.contact_id, to=row.to_number,
        sender=row.from_number, body=row.body, media_urls=tuple(row.media_urls or ()),
        attempts=row.attempts, kind=row.kind, claimed_at=claimed_at,
    )  # fmt: skip
