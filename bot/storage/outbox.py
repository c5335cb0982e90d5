"""The outbox's units of work (`bot.outbound.OutboxStore`), mixed into `Store`.

Set-based: a reservation is one UPDATE ... RETURNING (rows stay `queued`, `not_before` moves
past the lease), the guarded claim of the rows whose rate-limit slots came up one more, results
one executemany (SQLite) or one UPDATE ... FROM (VALUES ...) (PostgreSQL). While a row is
`sending` or `in_doubt`, `sent_at` holds the claim time: crash recovery (`stale_sending`) ages
rows by it and lookups search the provider from it; `claimed_at` keeps it after the send.

The guard (`_SENDABLE`), checked in the claim's own statement: the fan is not unsubscribed (for
a broadcast: subscribed), not erased, and their number is not on the suppression list unless
they subscribed again since. Compliance texts (the STOP confirmation, HELP) always go.
A broadcast text is also claimed only inside its fan's sending window (quiet hours, in the
fan's zone); outside it, the claim moves its `not_before` to the next opening instead. A timed
flow's text likewise waits while a person owns the fan's thread.
Marketing texts (broadcast, timed) over the fan's frequency cap become `skipped` there
(bot.storage.frequency_sql: counted under the fan's lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audience import frequency
from bot.audience.quiet_hours import DEFAULT_ZONE, window, zone_for_fan
from bot.domain import PERSON_IN_THREAD, ConsentChange
from bot.messages import DeliveryReport, OutboundSms
from bot.outbound import OutboxItem, SendResult
from bot.pacing import SLOW_HOLD_S
from bot.storage import frequency_sql, send_rates
from bot.storage.broadcast_tables import broadcasts
from bot.storage.tables import (
    TS,
    contacts,
    conversations,
    early_reports,
    messages,
    suppressions,
)

# a delivery report never moves a message backwards (callbacks can arrive out of order)
_STATUS_RANK = {
    "queued": 0, "sending": 1, "twiml": 2, "sent": 2, "undelivered": 3,
    "failed": 3, "delivered": 4, "read": 5,
}  # fmt: skip
CARRIER_OPT_OUT = 21610


def now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class OutboxQueries:
    """Needs `self.db`, `self.phone_hash` and the store's `_change_consent` / `_enqueue`."""

    db: Any
    frequency_cap: frequency.FrequencyCap | None = None  # Store's; None: no cap

    async def reserve_outbox(self, limit: int, lease_s: float) -> list[OutboxItem]:
        return await self.db.run(self._reserve, limit, lease_s)

    def _reserve(self, conn: Connection, limit: int, lease_s: float) -> list[OutboxItem]:
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
            .values(not_before=at + timedelta(seconds=lease_s))
            .returning(*_CLAIMED)
        ).all()
        rows.sort(key=lambda r: r.id)
        return [_outbox_item(r, None) for r in rows]

    async def claim_sends(self, items: Sequence[OutboxItem]) -> list[OutboxItem]:
        if not items:
            return []
        return await self.db.run(self._claim_sends, items)

    def _claim_sends(self, conn: Connection, items: Sequence[OutboxItem]) -> list[OutboxItem]:
        at = now()
        m = messages.c
        held = self._hold_for_quiet_hours(conn, items, at)
        items = [i for i in items if i.id not in held]
        if not items:
            return []
        mine = sa.and_(
            # the ids too: SQLite searches a row-value IN by the (status, not_before) index,
            # every queued text of a million-fan broadcast, instead of by primary key
            m.id.in_([i.id for i in items]),
            sa.tuple_(m.id, m.attempts).in_([(i.id, i.attempts) for i in items]),
            m.status == "queued",
        )
        blocked = self._suppressed_numbers(conn, items)
        sendable = sa.and_(_SENDABLE, m.id.not_in(blocked)) if blocked else _SENDABLE
        over = frequency_sql.capped(conn, self.frequency_cap, items, at)
        # one statement claims the rest and skips the texts over the cap (never sent later)
        rows = conn.execute(
            messages.update()
            .where(mine, sendable)
            .values(**(_claim_or_skip(m.id.in_(list(over)), at) if over else _claim(at)))
            .returning(m.id, m.status)
        ).all()
        claimed = {i for i, status in rows if status == "sending"}
        over = {i for i, status in rows if status == "skipped"}
        if len(claimed) + len(over) < len(items):  # not claimable: opted out, erased, suppressed
            conn.execute(
                messages.update()
                .where(mine, m.id.not_in(list(claimed | over)) if claimed | over else sa.true())
                .values(status="cancelled", error="fan opted out before the send", sent_at=None)
            )
        return [
            replace(i, attempts=i.attempts + 1, claimed_at=at) for i in items if i.id in claimed
        ]

    def _hold_for_quiet_hours(
        self, conn: Connection, items: Sequence[OutboxItem], at: datetime
    ) -> set[int]:
        """Broadcast texts whose fan is outside their sending window right now: they stay
        `queued` with `not_before` at the window's next opening in the fan's zone. Checked
        here, at the claim, because a text can wait past 21:00 local after being queued at
        20:55 (pacing), or be resumed at night; the enqueue's `not_before` is only a first
        guess. Replies, compliance and system texts answer the fan and are never held; timed
        flows' texts (kind `timed`) are held in the line's default window (08:00-21:00), and
        while a person owns the fan's thread (looked at again every `PERSON_HOLD`)."""
        ids = [i.id for i in items if i.kind in ("broadcast", "timed")]
        if not ids:
            return set()
        m, b, cv = messages.c, broadcasts.c, conversations.c
        rows = conn.execute(
            sa.select(m.id, m.attempts, m.kind, _c.profile, _c.phone, cv.status,
                      sa.func.coalesce(b.quiet_start, "08:00").label("quiet_start"),
                      sa.func.coalesce(b.quiet_end, "21:00").label("quiet_end"),
                      sa.func.coalesce(b.default_zone, DEFAULT_ZONE).label("default_zone"))
            .select_from(messages.join(contacts, _c.id == m.contact_id)
                         .outerjoin(conversations, cv.contact_id == m.contact_id)
                         .outerjoin(broadcasts, b.id == m.broadcast_id))
            .where(m.id.in_(ids))
        ).all()  # fmt: skip
        held = []
        for r in rows:
            zone = zone_for_fan(r.profile or {}, r.phone, r.default_zone)
            opens = window(r.quiet_start, r.quiet_end).opens_at(zone, at)
            if opens is None and r.kind == "timed" and r.status in PERSON_IN_THREAD:
                opens = at + PERSON_HOLD
            if opens is not None:
                held.append({"oid": r.id, "tries": r.attempts, "at": opens})
        if held:
            conn.execute(_HOLD, held)
        return {h["oid"] for h in held}

    def _suppressed_numbers(self, conn: Connection, items: Sequence[OutboxItem]) -> list[int]:
        """Rows without a fan (system texts) whose number is on the suppression list."""
        loose = {self.phone_hash(i.to): i.id for i in items if i.contact_id is None and i.to}
        if not loose:
            return []
        hit = conn.execute(
            sa.select(suppressions.c.phone_hash).where(suppressions.c.phone_hash.in_(list(loose)))
        ).scalars()
        return [loose[h] for h in hit]

    async def claim_outbox(self, limit: int) -> list[OutboxItem]:
        """Reserve and claim at once, without a rate limit: for tools and tests."""

        def claim(conn: Connection) -> list[OutboxItem]:
            return self._claim_sends(conn, self._reserve(conn, limit, 60.0))

        return await self.db.run(claim)

    async def outbox_in_doubt(
        self, item: OutboxItem, delay_s: float, error: str, *, give_up: bool = False
    ) -> None:
        status = "unknown" if give_up else "in_doubt"
        if give_up:
            error = f"outcome unknown: {error}; check the provider's log, then requeue or drop"

        def mark(conn: Connection) -> None:
            conn.execute(
                messages.update()
                .where(messages.c.id == item.id, messages.c.attempts == item.attempts,
                       messages.c.status.in_(("sending", "in_doubt")))
                .values(status=status, lookups=messages.c.lookups + 1, error=error[:500],
                        not_before=now() + timedelta(seconds=delay_s))
            )  # fmt: skip

        await self.db.run(mark)

    async def due_in_doubt(self, limit: int = 500) -> list[OutboxItem]:
        def due(conn: Connection) -> list[OutboxItem]:
            m = messages.c
            rows = conn.execute(
                sa.select(*_CLAIMED, m.sent_at, m.lookups)
                .where(m.status == "in_doubt", sa.or_(m.not_before.is_(None), m.not_before <= now()))
                .order_by(m.id)
                .limit(limit)
            ).all()  # fmt: skip
            return [
                replace(
                    _outbox_item(r, _aware(r.sent_at) if r.sent_at else None), lookups=r.lookups
                )
                for r in rows
            ]

        return await self.db.run(due)

    async def uncertain_counts(self) -> dict[str, int]:
        def count(conn: Connection) -> dict[str, int]:
            m = messages.c
            rows = conn.execute(
                sa.select(m.status, sa.func.count())
                .where(m.status.in_(("in_doubt", "unknown")))
                .group_by(m.status)
            ).all()
            return {status: n for status, n in rows}

        return await self.db.run(count)

    async def unknown_sends(self, limit: int = 200) -> list[dict[str, Any]]:
        """Sends whose outcome nobody knows, for an operator: no numbers, no bodies."""

        def rows(conn: Connection) -> list[dict[str, Any]]:
            m = messages.c
            found = conn.execute(
                sa.select(m.id, m.contact_id, m.kind, m.broadcast_id, m.status, m.attempts,
                          m.lookups, m.claimed_at, m.error)
                .where(m.status.in_(("unknown", "in_doubt")))
                .order_by(m.id)
                .limit(limit)
            ).all()  # fmt: skip
            return [dict(r._mapping) for r in found]

        return await self.db.run(rows)

    async def resolve_unknown(self, outbox_ids: Sequence[int], outcome: str) -> int:
        """An operator checked the provider: `requeue` (never sent) or `drop` (it was, or let
        it be). Only rows still `unknown` change."""
        values: dict[str, Any] = (
            {"status": "queued", "not_before": None, "sent_at": None, "lookups": 0,
             "error": "requeued by an operator"}
            if outcome == "requeue"
            else {"status": "cancelled", "error": "dropped by an operator (outcome unknown)"}
        )  # fmt: skip

        def go(conn: Connection) -> int:
            result = conn.execute(
                messages.update()
                .where(messages.c.id.in_(list(outbox_ids)), messages.c.status == "unknown")
                .values(**values)
            )
            return result.rowcount or 0

        return await self.db.run(go)

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

    async def outbox_backlog(self) -> dict[str, tuple[int, int]]:
        """Queued texts per sending number ("" = the default sender): (due now, due later)."""

        def count(conn: Connection) -> dict[str, tuple[int, int]]:
            m = messages.c
            due = sa.case((m.not_before <= now(), 1), else_=0)
            rows = conn.execute(
                sa.select(m.from_number, sa.func.sum(due), sa.func.count())
                .where(m.direction == "out", m.status == "queued")
                .group_by(m.from_number)
            ).all()
            return {(k or ""): (int(d or 0), int(n) - int(d or 0)) for k, d, n in rows}

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
            self._apply_early_reports(conn, [sid for _, sid, _, _ in results])
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
        self._apply_early_reports(conn, [sid for _, sid, _, _ in results])

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None:
        def mark(conn: Connection) -> None:
            conn.execute(
                messages.update()
                .where(messages.c.id == outbox_id)
                .values(status="queued", not_before=now() + timedelta(seconds=delay_s),
                        error=error[:500], sent_at=None)
            )  # fmt: skip

        await self.db.run(mark)

    async def outbox_defer(self, rows: Sequence[tuple[int, int, float]], reason: str) -> None:
        """Reserved rows held back (their number's daily cap): due again after their delay,
        only while still `queued` at the same attempts (a STOP or a pause meanwhile wins)."""
        m = messages.c

        def mark(conn: Connection) -> None:
            at = now()
            for oid, tries, delay_s in rows:
                conn.execute(
                    messages.update()
                    .where(m.id == oid, m.status == "queued", m.attempts == tries)
                    .values(not_before=at + timedelta(seconds=delay_s), error=reason[:500])
                )

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
            self._apply_early_reports(conn, [s["sid"] for s in sent])
        if requeue:
            conn.execute(_REQUEUE, requeue)
        return len(sent), len(requeue)

    # set when the send rates live elsewhere (Redis): a 30022 slows the number down there
    rate_hook: Any = None

    async def apply_delivery_report(self, report: DeliveryReport) -> bool:
        found, slowed = await self.db.run(self._apply_report, report)
        if slowed is not None and self.rate_hook is not None:
            await self.rate_hook(slowed, 0.0)
        return found

    def _apply_report(self, conn: Connection, report: DeliveryReport) -> tuple[bool, str | None]:
        """Whether the report is ours, and the sending number it slows down (30022)."""
        row = conn.execute(
            sa.select(
                messages.c.id, messages.c.status, messages.c.contact_id, messages.c.from_number
            ).where(messages.c.channel_id == report.channel_id, messages.c.direction == "out")
        ).first()
        if row is None:
            _keep_early(conn, report)
            return False, None
        return True, self._apply_to_row(conn, row, report)

    def _apply_early_reports(self, conn: Connection, sids: Sequence[str]) -> None:
        """Reports that arrived before these SIDs were stored, applied now (in the same
        transaction that stores them) and forgotten."""
        e = early_reports.c
        early = conn.execute(sa.select(early_reports).where(e.channel_id.in_(sids))).all()
        if not early:
            return
        m = messages.c
        rows = {r.channel_id: r for r in conn.execute(
            sa.select(m.id, m.status, m.contact_id, m.from_number, m.channel_id)
            .where(m.channel_id.in_([r.channel_id for r in early]), m.direction == "out")
        )}  # fmt: skip
        for r in early:
            if r.channel_id in rows:
                report = DeliveryReport(r.channel_id, r.status, r.error_code)
                self._apply_to_row(conn, rows[r.channel_id], report, shared_rate=False)
        conn.execute(early_reports.delete().where(e.channel_id.in_([r.channel_id for r in early])))

    def _apply_to_row(
        self, conn: Connection, row: Any, report: DeliveryReport, shared_rate: bool = True
    ) -> str | None:
        """Apply a report to its message; the sending number it slows down (30022), if any."""
        if _STATUS_RANK.get(report.status, 0) >= _STATUS_RANK.get(row.status, 0):
            conn.execute(
                messages.update()
                .where(messages.c.id == row.id)
                .values(status=report.status, error_code=report.error_code)
            )
        if report.error_code == CARRIER_OPT_OUT and row.contact_id is not None:
            change = ConsentChange("opt_out", "carrier", "Twilio error 21610")
            self._change_consent(conn, row.contact_id, change, now())
        if report.error_code not in send_rates.SLOW_CODES:
            return None
        if self.rate_hook is None:  # 30022: the number sends too fast, in this transaction
            send_rates.slow_down(conn, row.from_number or "", 1.0, SLOW_HOLD_S)
        # (an early 30022 with the rates in Redis is not replayed there: the next one slows it)
        return (row.from_number or "") if shared_rate else None


PERSON_HOLD = timedelta(minutes=5)  # a timed text held while a person owns the thread
EARLY_KEEP = timedelta(days=2)  # a report for a SID that never shows up is not ours: forgotten


def _keep_early(conn: Connection, report: DeliveryReport) -> None:
    """Keep a report whose SID is not stored yet; of two, the later status wins."""
    e = early_reports.c
    at = now()
    conn.execute(early_reports.delete().where(e.at < at - EARLY_KEEP))
    old = conn.execute(sa.select(e.status).where(e.channel_id == report.channel_id)).first()
    values = {"status": report.status, "error_code": report.error_code, "at": at}
    if old is None:
        conn.execute(early_reports.insert().values(channel_id=report.channel_id, **values))
    elif _STATUS_RANK.get(report.status, 0) >= _STATUS_RANK.get(old.status, 0):
        conn.execute(
            early_reports.update().where(e.channel_id == report.channel_id).values(**values)
        )


# ---- the outbox's statements (built once; used by the outbox section of Store) -------------

_CLAIMED = (
    messages.c.id, messages.c.contact_id, messages.c.to_number, messages.c.from_number,
    messages.c.body, messages.c.media_urls, messages.c.attempts, messages.c.kind,
)  # fmt: skip
_c, _s = contacts.c, suppressions.c
_FAN_SENDABLE = sa.exists().where(
    _c.id == messages.c.contact_id,
    _c.erased_at.is_(None),
    _c.phone.is_not(None),
    # marketing (a broadcast, a timed flow's text) needs a subscribed fan, not merely a known one
    sa.case((messages.c.kind.in_(("broadcast", "timed")), _c.subscription == "subscribed"),
            else_=_c.subscription != "unsubscribed"),
    # an erased number stays suppressed unless its new contact subscribed again since
    ~sa.exists().where(_s.phone_hash == _c.phone_hash,
                       sa.or_(_c.subscribed_at.is_(None), _c.subscribed_at < _s.at)),
)  # fmt: skip
_SENDABLE = sa.or_(messages.c.kind == "compliance", messages.c.contact_id.is_(None), _FAN_SENDABLE)
_b = sa.bindparam
_MARK_SENT = (
    messages.update()
    .where(messages.c.id == _b("oid"), messages.c.status == "sending")
    .values(status="sent", channel_id=_b("sid"), segments=_b("seg"), encoding=_b("enc"),
            sent_at=_b("at"), error=None)
)  # fmt: skip
# (an OR, not IN: expanding IN lists cannot be used with executemany)
_IN_CLAIM = (messages.c.id == _b("oid"),
             sa.or_(messages.c.status == "sending", messages.c.status == "in_doubt"),
             messages.c.attempts == _b("tries"))  # fmt: skip
_SETTLE_SENT = (
    messages.update()
    .where(*_IN_CLAIM)
    .values(status="sent", channel_id=_b("sid"), segments=_b("seg"), encoding=_b("enc"),
            sent_at=_b("at"), error=None)
)  # fmt: skip
_HOLD = (
    messages.update()
    .where(messages.c.id == _b("oid"), messages.c.status == "queued",
           messages.c.attempts == _b("tries"))
    .values(not_before=_b("at"))
)  # fmt: skip
_REQUEUE = (
    messages.update()
    .where(*_IN_CLAIM)
    .values(status="queued", not_before=None, sent_at=None, lookups=0,
            error="recovered: the provider never accepted it")
)  # fmt: skip


def _claim(at: datetime) -> dict[str, Any]:
    m = messages.c
    return {"status": "sending", "attempts": m.attempts + 1, "sent_at": at, "claimed_at": at}


def _claim_or_skip(skip: Any, at: datetime) -> dict[str, Any]:
    """`_claim`, but `skipped` with the frequency cap's reason where `skip` holds."""
    m = messages.c
    when = sa.literal(at, TS)
    return {
        "status": sa.case((skip, "skipped"), else_="sending"),
        "attempts": sa.case((skip, m.attempts), else_=m.attempts + 1),
        "sent_at": sa.case((skip, sa.null()), else_=when),
        "claimed_at": sa.case((skip, m.claimed_at), else_=when),
        "error": sa.case((skip, frequency.REASON), else_=m.error),
    }


def _outbox_item(row: Any, claimed_at: datetime | None) -> OutboxItem:
    return OutboxItem(
        id=row.id, message_id=row.id, contact_id=row.contact_id, to=row.to_number,
        sender=row.from_number, body=row.body, media_urls=tuple(row.media_urls or ()),
        attempts=row.attempts, kind=row.kind, claimed_at=claimed_at,
    )  # fmt: skip
