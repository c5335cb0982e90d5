"""Units of work over the schema: each public coroutine is one transaction, one database trip.

The turn's units live here; the outbox's in `bot.storage.outbox` (mixed into `Store`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
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
from bot.errors import Conflict
from bot.messages import InboundSms, OutboundSms
from bot.storage import escalation_store, tag_store
from bot.storage.compiled import Compiled
from bot.storage.db import Database
from bot.storage.outbox import OutboxQueries, _aware, now
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    events,
    flow_columns,
    messages,
    suppressions,
)

ENGAGEMENT_RESOLUTION = timedelta(hours=1)


class SpentLink(Conflict):
    """A signup link that can no longer subscribe: `used` (or superseded) or `opted_out`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# unanswered texts a turn reads at once: a turn answers the oldest and reads again, so a burst
# of 1,000 texts from one number costs each turn a window, not the whole backlog
PENDING_WINDOW = 64


class Store(OutboxQueries):
    """The persistence layer. Returns domain types from `bot.domain`; never leaks rows."""

    def __init__(self, db: Database, *, hash_key: bytes, reply_window_h: float = 24.0):
        self.db = db
        self._q = _Prepared(self._insert, db.engine.dialect)
        self._pg = db.engine.dialect.name == "postgresql"
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
        if self._pg:
            self._q.settle_recordings_by_phone.first(conn, {"phone": msg.sender})
        recorded, row = self._record(conn, msg)
        if recorded.duplicate and recorded.answered:
            return recorded, None
        pending = None
        if row is not None and not recorded.duplicate and not row.has_pending:
            pending = (_just_recorded(msg, recorded.message_id),)  # the one unanswered: this
        return recorded, self._load_turn(conn, recorded.contact.id, row, pending)

    async def record_inbound(self, msg: InboundSms) -> Recorded:
        return await self.db.run(self._record_inbound, msg)

    def _record_inbound(self, conn: Connection, msg: InboundSms) -> Recorded:
        return self._record(conn, msg, locked=False)[0]

    def _record(
        self, conn: Connection, msg: InboundSms, locked: bool = True
    ) -> tuple[Recorded, Any]:
        """Record the text; also return the fan's contact+conversation row, read on the way.
        Not `locked` (the caller does not hold the fan's lock): the contact row is share-locked,
        so a text is never recorded onto a fan an erasure is removing."""
        q = self._q
        find = q.contact_and_conversation_by_phone if locked else q.contact_by_phone_shared
        row = find.first(conn, {"phone": msg.sender, "since": self._since()})
        if row is None:
            contact, is_new = self._contact_for(conn, msg.sender, msg.received_at)
        else:
            contact, is_new = _contact(row), False
        inserted = q.insert_inbound.scalar(
            conn,
            {"contact_id": contact.id, "channel_id": msg.channel_id, "from_number": msg.sender,
             "to_number": msg.recipient, "body": msg.body, "media_urls": list(msg.media_urls),
             "created_at": msg.received_at},
        )  # fmt: skip
        if inserted is None:
            existing = q.message_by_channel.first(conn, {"channel_id": msg.channel_id})
            answered = existing.status != "received"
            return Recorded(contact, existing.id, True, False, answered=answered), row
        last = row.last_inbound_at if row is not None else None
        if last is None or _aware(last) < msg.received_at - ENGAGEMENT_RESOLUTION:
            # kept to the hour for engagement segments; not a write on every text
            q.touch_contact.run(conn, {"cid": contact.id, "at": msg.received_at})
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

    def _load_turn(
        self,
        conn: Connection,
        contact_id: int,
        row: Any = None,
        pending: tuple[PendingText, ...] | None = None,
    ) -> TurnContext:
        """The turn's context; `pending` given when known without a statement (the fan had
        nothing unanswered before the text just recorded)."""
        q = self._q
        if row is None:
            if self._pg and pending is None:  # see settle_recordings
                q.settle_recordings.first(conn, {"cid": contact_id})
            row = q.contact_and_conversation.first(
                conn, {"cid": contact_id, "since": self._since()}
            )
        if pending is None:
            pending = tuple(
                PendingText(
                    r.id,
                    r.body,
                    len(r.media_urls or ()),
                    _aware(r.created_at),
                    r.channel_id or "",
                    r.to_number or "",
                )
                for r in q.pending_texts.rows(conn, {"cid": contact_id})
            )
        return TurnContext(
            contact=_contact(row),
            conversation_id=row.conv_id,
            status=row.conv_status,
            dialogue=row.dialogue or {},
            pending=pending,
            last_broadcast_id=row.last_broadcast_id,
            last_broadcast_text=row.last_broadcast_body,
        )

    def _since(self) -> datetime:
        """The start of the reply window: a fan's text after a broadcast sent since is a reply."""
        return now() - self.reply_window

    async def unanswered_fans(self, before: datetime, limit: int = 500) -> list[tuple[int, str]]:
        """(contact id, number) of fans with texts still `received` from before `before`:
        texts a crash left unanswered, oldest first (for the recovery pass)."""

        def find(conn: Connection) -> list[tuple[int, str]]:
            m = messages.c
            rows = conn.execute(
                sa.select(m.contact_id, contacts.c.phone)
                .join(contacts, contacts.c.id == m.contact_id)
                .where(m.direction == "in", m.status == "received", m.created_at < before,
                       contacts.c.phone.is_not(None))
                .group_by(m.contact_id, contacts.c.phone)
                .order_by(sa.func.min(m.id))
                .limit(limit)
            ).all()  # fmt: skip
            return [(r.contact_id, r.phone) for r in rows]

        return await self.db.run(find)

    async def is_first_text(self, contact_id: int, message_id: int) -> bool:
        """Whether this is the fan's very first text (a first contact, even when answered late)."""
        m = messages.c
        first = await self.db.run(
            lambda c: c.execute(
                sa.select(sa.func.min(m.id)).where(m.contact_id == contact_id, m.direction == "in")
            ).scalar()
        )
        return bool(first == message_id)

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
        # the text's status first: the same statement tells whether the fan was erased
        erased = q.set_message_status.first(
            conn,
            {"mid": rec.message_id, "new_status": rec.inbound_status, "bid": rec.broadcast_id,
             "cid": rec.contact_id},
        )  # fmt: skip
        if erased is None or erased.erased_at is not None:
            return _refuse_erased(conn, rec)  # erased while the turn ran: nothing of it is kept
        if rec.events:
            q.insert_events.run_many(
                conn,
                [
                    {"contact_id": rec.contact_id, "message_id": rec.message_id,
                     "type": kind, "data": data, "at": at, **flow_columns(data)}
                    for kind, data in rec.events
                ],
            )  # fmt: skip
        # escalation before conversation: the order the escalation timer locks them in
        if rec.escalation is not None:  # a new escalation, or the text joins the open one
            escalation_store.open_or_join(
                conn, rec.contact_id, rec.conversation_id, rec.message_id, rec.escalation, at
            )
        elif rec.attach_to_escalation:
            escalation_store.attach_to_current(conn, rec.conversation_id, rec.message_id)
        conv_values: dict[str, Any] = {"conv_id": rec.conversation_id, "updated_at": at}
        if rec.dialogue is not None:
            conv_values["dialogue"] = rec.dialogue
        if rec.status is not None:
            conv_values["status"] = rec.status
        q.update_conversation[rec.dialogue is not None, rec.status is not None].run(
            conn, conv_values
        )
        if rec.profile_updates:
            self._update_profile(conn, rec.contact_id, rec.profile_updates)
        for source in dict.fromkeys(s for _, s in rec.tags):  # a keyword's or a flow's tags
            tags = [t for t, s in rec.tags if s == source]
            tag_store.add_tags(conn, rec.contact_id, tags, source, at)
        if rec.consent is not None:
            self._change_consent(conn, rec.contact_id, rec.consent, at, rec.message_id)
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
        if not extra:  # a turn's replies: one driver-level insert each (the ids in order)
            insert = self._q.insert_reply
            return [
                QueuedReply(
                    insert.scalar(
                        conn,
                        {
                            "contact_id": contact_id,
                            "to_number": r.to,
                            "from_number": r.sender,
                            "body": r.body,
                            "media_urls": list(r.media_urls),
                            "kind": r.kind,
                            "status": status,
                            "reply_to": reply_to,
                            "not_before": not_before,
                            "created_at": at,
                        },
                    ),  # fmt: skip
                    r,
                    status,
                )
                for r in replies
            ]
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
        tag_store.update_profile(conn, contact_id, updates, now())

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

    # ---- signup links: single use, and dead once the fan has opted out since -------------

    async def signup_link_state(self, contact_id: int, issued_at: datetime) -> str:
        return await self.db.run(self._link_state, contact_id, issued_at)

    def _link_state(self, conn: Connection, contact_id: int, issued_at: datetime) -> str:
        """`ok`, `used` (a link was used since this one was issued) or `opted_out` (since)."""
        c, e = contacts.c, consent_events.c
        used = conn.execute(sa.select(c.signup_used_at).where(c.id == contact_id)).scalar()
        opted_out = conn.execute(
            sa.select(e.id)
            .where(e.contact_id == contact_id, e.action == "opt_out", e.at > issued_at)
            .limit(1)
        ).first()
        if opted_out is not None:
            return "opted_out"
        return "used" if used is not None and _aware(used) >= issued_at else "ok"

    def _claim_signup_link(self, conn: Connection, contact_id: int, issued_at: datetime) -> None:
        """Spend a link issued at `issued_at` (and every older one), or raise SpentLink.

        The conditional UPDATE is the claim: of two posts of one link, the second finds the
        row already spent (on PostgreSQL it waits for the first's row lock, then re-checks).
        """
        state = self._link_state(conn, contact_id, issued_at)
        if state == "ok":
            c = contacts.c
            claimed = conn.execute(
                contacts.update()
                .where(c.id == contact_id,
                       sa.or_(c.signup_used_at.is_(None), c.signup_used_at < issued_at))
                .values(signup_used_at=now())
            ).rowcount  # fmt: skip
            state = "ok" if claimed else "used"
        if state != "ok":
            raise SpentLink(state)

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
    """The hot path's statements, built once: building a statement costs more than running it.
    The turn's own are compiled for the dialect and run on the driver (`Compiled`)."""

    def __init__(self, insert: Any, dialect: Any):
        b = sa.bindparam
        m = messages.c

        def compiled(statement: Any) -> Compiled:
            return Compiled(statement, dialect)

        self.contact_by_phone = sa.select(contacts).where(contacts.c.phone == b("phone"))
        self.insert_inbound = compiled(
            insert(messages)
            .values(
                contact_id=b("contact_id"), direction="in", channel_id=b("channel_id"),
                from_number=b("from_number"), to_number=b("to_number"), body=b("body"),
                media_urls=b("media_urls", type_=m.media_urls.type), kind="sms",
                status="received", created_at=b("created_at", type_=m.created_at.type),
            )
            .on_conflict_do_nothing(index_elements=["channel_id"])
            .returning(m.id)
        )  # fmt: skip
        self.message_by_channel = compiled(
            sa.select(m.id, m.status).where(m.channel_id == b("channel_id"))
        )
        self.touch_contact = compiled(
            contacts.update()
            .where(contacts.c.id == b("cid"))
            .values(last_inbound_at=b("at", type_=contacts.c.last_inbound_at.type))
        )
        # the fan's latest broadcast within the reply window, read in the same statement as
        # the fan (one statement fewer per turn; statements, not rows, are a turn's cost)
        latest = (
            sa.select(m.broadcast_id, m.body)
            .where(m.contact_id == contacts.c.id, m.direction == "out", m.kind == "broadcast",
                   m.created_at >= b("since", type_=m.created_at.type))
            .order_by(m.id.desc())
            .limit(1)
        )  # fmt: skip
        # texts still unanswered from before this one? None (the usual case): the turn's
        # pending texts are just the one recorded, and need no statement of their own
        has_pending = sa.exists().where(
            m.contact_id == contacts.c.id, m.direction == "in", m.status == "received"
        )
        with_conversation = sa.select(
            contacts, conversations.c.id.label("conv_id"),
            conversations.c.status.label("conv_status"), conversations.c.dialogue,
            latest.with_only_columns(m.broadcast_id).scalar_subquery().label("last_broadcast_id"),
            latest.with_only_columns(m.body).scalar_subquery().label("last_broadcast_body"),
            has_pending.label("has_pending"),
        ).join(conversations, conversations.c.contact_id == contacts.c.id)  # fmt: skip
        self.contact_and_conversation = compiled(with_conversation.where(contacts.c.id == b("cid")))
        by_phone = with_conversation.where(contacts.c.phone == b("phone"))
        self.contact_and_conversation_by_phone = compiled(by_phone)
        # outside the fan's lock: waits for an erasure in flight, then no longer finds the fan
        self.contact_by_phone_shared = compiled(by_phone.with_for_update(read=True, of=contacts))
        # PostgreSQL: wait for this fan's texts being recorded right now (each holds the row
        # FOR SHARE until it commits), so the pending read after it sees every text with a
        # lower id: the fan's texts are answered in the order they were stored
        settle = sa.select(contacts.c.id).with_for_update(key_share=True, of=contacts)
        self.settle_recordings_by_phone = compiled(settle.where(contacts.c.phone == b("phone")))
        self.settle_recordings = compiled(settle.where(contacts.c.id == b("cid")))
        self.pending_texts = compiled(
            sa.select(m.id, m.body, m.media_urls, m.created_at, m.channel_id, m.to_number)
            .where(m.contact_id == b("cid"), m.direction == "in", m.status == "received")
            .order_by(m.id)
            .limit(PENDING_WINDOW)  # a burst's backlog: the oldest first, never all of it
        )
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
        e = events.c
        self.insert_events = compiled(
            events.insert().values(
                contact_id=b("contact_id"), message_id=b("message_id"), type=b("type"),
                data=b("data", type_=e.data.type), at=b("at", type_=e.at.type),
                flow=b("flow", type_=e.flow.type), step=b("step", type_=e.step.type),
            )
        )  # fmt: skip
        # (dialogue given, status given) -> the UPDATE setting just those
        cv = conversations.c
        self.update_conversation = {
            (with_dialogue, with_status): compiled(
                conversations.update()
                .where(cv.id == b("conv_id"))
                .values(
                    updated_at=b("updated_at", type_=cv.updated_at.type),
                    **({"dialogue": b("dialogue", type_=cv.dialogue.type)} if with_dialogue else {}),
                    **({"status": b("status")} if with_status else {}),
                )
            )
            for with_dialogue in (False, True)
            for with_status in (False, True)
        }  # fmt: skip
        # the text's status, and whether its fan was erased meanwhile (no row: the text is gone)
        self.set_message_status = compiled(
            messages.update()
            .where(m.id == b("mid"))
            .values(status=b("new_status"), broadcast_id=b("bid"))
            .returning(
                sa.select(contacts.c.erased_at)
                .where(contacts.c.id == b("cid"))
                .scalar_subquery()
                .label("erased_at")
            )
        )
        self.insert_outbound = messages.insert().returning(m.id, sort_by_parameter_order=True)
        self.insert_reply = compiled(
            messages.insert()
            .values(
                contact_id=b("contact_id"), direction="out", to_number=b("to_number"),
                from_number=b("from_number"), body=b("body"),
                media_urls=b("media_urls", type_=m.media_urls.type), kind=b("kind"),
                status=b("status"), reply_to=b("reply_to"),
                not_before=b("not_before", type_=m.not_before.type),
                created_at=b("created_at", type_=m.created_at.type),
            )
            .returning(m.id)
        )  # fmt: skip


def _just_recorded(msg: InboundSms, message_id: int) -> PendingText:
    """The text just recorded, as the pending-texts statement would have read it back."""
    return PendingText(
        message_id, msg.body, len(msg.media_urls), _aware(msg.received_at),
        msg.channel_id or "", msg.recipient or "",
    )  # fmt: skip


def _refuse_erased(conn: Connection, rec: TurnRecord) -> list[QueuedReply]:
    """A turn that began before its fan's erasure commits nothing: no replies, no state, and
    the inbound text (recorded before the erasure, or by a late writer) is scrubbed as well."""
    conn.execute(
        messages.update()
        .where(messages.c.id == rec.message_id)
        .values(
            body="", media_urls=[], from_number=None, status=rec.inbound_status, broadcast_id=None
        )
    )
    return []


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
