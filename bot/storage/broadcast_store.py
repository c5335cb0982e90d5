"""Broadcast units of work: create, enqueue in chunks (set-based), pause/resume/cancel, statistics.

Enqueuing is restartable and exactly-once: each chunk is one transaction that locks the
broadcast row, inserts the next recipients (`INSERT ... SELECT` over the segment, in contact-id
order after the stored cursor), writes their outbox messages from those rows, and moves the
cursor. A crash loses at most an uncommitted chunk, which the next run redoes; the unique
(broadcast, fan) constraints make a second copy impossible even if that logic were wrong.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot import linkish
from bot.audience.broadcast_model import (
    Broadcast,
    BroadcastStats,
    NewBroadcast,
    Part,
    Placeholder,
    parse_template,
)
from bot.audience.links import find_urls
from bot.audience.quiet_hours import QuietHours, phone_prefix_zones, zip3_zones
from bot.audience.segments import Segment
from bot.audience.variants import ABTest, Variant, pick_winner
from bot.errors import ConfigError, Conflict, NotFound
from bot.storage import link_store, variant_store
from bot.storage.broadcast_tables import broadcast_recipients, broadcasts
from bot.storage.engagement_tables import broadcast_variants
from bot.storage.report_store import opt_out_text
from bot.storage.segment_sql import field, segment_condition, zip3
from bot.storage.store import Store
from bot.storage.tables import TS, consent_events, contacts, messages

# a broadcast's texts still to go somewhere (queued, being sent, outcome not known, held): while
# any is left it is `sending`; then `completed` (late delivery reports still update its counts)
OPEN_TEXTS = ("queued", "sending", "in_doubt", "unknown", "paused")
MAX_PACE_BUCKETS = 50  # CASE branches per chunk for pacing
INVALID = "(invalid segment)"  # a listed broken segment matches only fans with this tag


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    added: int
    done: bool  # every recipient is in the outbox
    status: str


class BroadcastStore:
    """Broadcast persistence over the engine's `Store` (same database, same unit-of-work style)."""

    def __init__(
        self, store: Store, *, link_base: str = "", utm: dict[str, str] | None = None
    ) -> None:
        self.store = store
        self.db = store.db
        self.dialect = store.db.engine.dialect.name
        self.link_base = link_base  # "https://nova.fm/l/"; "" leaves URLs as written
        self.utm = utm or {}

    # ---- create and read ----------------------------------------------------------------

    async def create(self, spec: NewBroadcast, send_at: datetime | None = None) -> int:
        def insert(conn: Connection) -> int:
            new_id: int = conn.execute(
                broadcasts.insert()
                .values(
                    name=spec.name, body=spec.body, media_urls=list(spec.media_urls),
                    segment=spec.segment.to_json(), status="draft", sender=spec.sender,
                    rate=spec.rate, quiet_start=spec.quiet_start, quiet_end=spec.quiet_end,
                    default_zone=spec.default_zone, send_at=send_at, cursor=0, enqueued=0,
                    created_at=now(), **variant_store.ab_columns(spec.ab),
                )
                .returning(broadcasts.c.id)
            ).scalar_one()  # fmt: skip
            if spec.ab is not None:
                conn.execute(broadcast_variants.insert(), [
                    {"broadcast_id": new_id, "label": v.label, "body": v.body, "winner": False}
                    for v in spec.ab.variants
                ])  # fmt: skip
            return new_id

        return await self.db.run(insert)

    async def get(self, broadcast_id: int) -> Broadcast:
        return await self.db.run(_get, broadcast_id)

    async def all(self) -> list[Broadcast]:
        def rows(conn: Connection) -> list[Broadcast]:
            found = conn.execute(sa.select(broadcasts).order_by(broadcasts.c.id)).all()
            return [_broadcast(r, strict=False) for r in found]

        return await self.db.run(rows)

    async def due(self, at: datetime) -> list[int]:
        """Broadcasts to enqueue now: scheduled and due, or interrupted while enqueuing."""

        def ids(conn: Connection) -> list[int]:
            b = broadcasts.c
            return list(
                conn.execute(
                    sa.select(b.id)
                    .where(
                        sa.or_(
                            sa.and_(b.status == "scheduled", b.send_at <= at),
                            b.status == "enqueuing",
                        )
                    )
                    .order_by(b.id)
                ).scalars()
            )

        return await self.db.run(ids)

    # ---- segment queries (preview) -------------------------------------------------------

    async def count(self, segment: Segment) -> int:
        cond = segment_condition(segment, self.dialect)
        return await self.db.run(
            lambda c: c.execute(sa.select(sa.func.count()).where(cond)).scalar_one()
        )

    async def sample_profiles(self, segment: Segment, limit: int) -> list[dict[str, Any]]:
        cond = segment_condition(segment, self.dialect)
        query = sa.select(contacts.c.profile).where(cond).order_by(contacts.c.id).limit(limit)
        return await self.db.run(lambda c: [dict(p or {}) for p in c.execute(query).scalars()])

    async def longest_values(self, segment: Segment, names: list[str]) -> dict[str, int]:
        if not names:
            return {}
        cond = segment_condition(segment, self.dialect)
        cols = [sa.func.max(sa.func.length(field(n))) for n in names]
        row = await self.db.run(lambda c: c.execute(sa.select(*cols).where(cond)).one())
        return {n: int(v or 0) for n, v in zip(names, row, strict=True)}

    async def count_held(self, segment: Segment, quiet: QuietHours, zone: str, at: datetime) -> int:
        cond = sa.and_(
            segment_condition(segment, self.dialect, at), quiet_expr(quiet, zone, at).is_not(None)
        )
        return await self.db.run(
            lambda c: c.execute(sa.select(sa.func.count()).where(cond)).scalar_one()
        )

    # ---- status changes ------------------------------------------------------------------

    async def start(self, broadcast_id: int, send_at: datetime | None) -> Broadcast:
        """draft/scheduled -> scheduled (a future send_at) or enqueuing (now)."""

        def go(conn: Connection) -> Broadcast:
            b = _row(conn, broadcast_id, lock=True)
            if b.status not in ("draft", "scheduled"):
                raise Conflict(f"broadcast {broadcast_id} is {b.status}; it can only start once")
            at = now()
            if send_at is not None and send_at > at:
                values: dict[str, Any] = {"status": "scheduled", "send_at": send_at}
            else:
                values = {"status": "enqueuing", "started_at": at}
            _update(conn, broadcast_id, **values)
            return _get(conn, broadcast_id)

        return await self.db.run(go)

    async def claim_due(self, broadcast_id: int, at: datetime) -> bool:
        """Start a scheduled broadcast whose time has come: one conditional UPDATE, so of two
        schedulers that picked it, exactly one wins (the other gets False and moves on)."""

        def go(conn: Connection) -> bool:
            b = broadcasts.c
            won = conn.execute(
                broadcasts.update()
                .where(b.id == broadcast_id, b.status == "scheduled", b.send_at <= at)
                .values(status="enqueuing", started_at=now())
            ).rowcount
            return bool(won)

        return await self.db.run(go)

    async def pause(self, broadcast_id: int) -> int:
        def go(conn: Connection) -> int:
            b = _row(conn, broadcast_id, lock=True)
            if b.status not in ("enqueuing", "sending", "scheduled"):
                raise Conflict(f"broadcast {broadcast_id} is {b.status}; only a running one pauses")
            _update(conn, broadcast_id, status="paused")
            return _move(conn, broadcast_id, "queued", "paused")

        return await self.db.run(go)

    async def resume(self, broadcast_id: int) -> int:
        def go(conn: Connection) -> int:
            b = _row(conn, broadcast_id, lock=True)
            if b.status not in ("paused", "failed"):
                raise Conflict(f"broadcast {broadcast_id} is {b.status}, not paused or failed")
            values: dict[str, Any] = {}
            if b.status == "failed":  # a retry: the reason goes, the enqueue picks up its cursor
                values = {"error": None, "finished_at": None, "started_at": b.started_at or now()}
                status = "sending" if b.enqueued_at else "enqueuing"
            elif b.started_at is None:
                status = "scheduled"
            else:
                status = "sending" if b.enqueued_at else "enqueuing"
            _update(conn, broadcast_id, status=status, **values)
            return _move(conn, broadcast_id, "paused", "queued")

        return await self.db.run(go)

    async def fail(self, broadcast_id: int, reason: str) -> int:
        """The broadcast cannot go on: `failed` with the reason; texts already queued are held
        (`cancel` drops them). A plain update: the stored row may be what is broken."""

        def go(conn: Connection) -> int:
            conn.execute(
                broadcasts.update()
                .where(broadcasts.c.id == broadcast_id,
                       broadcasts.c.status.in_(("draft", "scheduled", "enqueuing", "sending")))
                .values(status="failed", error=reason[:500], finished_at=now())
            )  # fmt: skip
            return _move(conn, broadcast_id, "queued", "paused")

        return await self.db.run(go)

    async def complete_finished(self, broadcast_id: int | None = None) -> list[int]:
        """`sending` -> `completed` for broadcasts fully enqueued with every text in a final
        state; one conditional UPDATE, safe from several processes. Returns the ids moved."""

        def go(conn: Connection) -> list[int]:
            b, m = broadcasts.c, messages.c
            left = sa.exists().where(
                m.broadcast_id == b.id, m.kind == "broadcast", m.status.in_(OPEN_TEXTS)
            )
            done = [b.status == "sending", b.enqueued_at.is_not(None), sa.not_(left),
                    sa.or_(b.test_share.is_(None), b.winner_sent_at.is_not(None))]  # fmt: skip
            if broadcast_id is not None:
                done.append(b.id == broadcast_id)
            ids = list(conn.execute(sa.select(b.id).where(*done)).scalars())
            if ids:  # the same condition again: a text requeued meanwhile keeps it sending
                conn.execute(broadcasts.update().where(b.id.in_(ids), *done)
                             .values(status="completed", finished_at=now()))  # fmt: skip
            return ids

        return await self.db.run(go)

    async def cancel(self, broadcast_id: int) -> int:
        def go(conn: Connection) -> int:
            b = _row(conn, broadcast_id, lock=True)
            if b.status in ("cancelled", "completed"):  # nothing left to cancel
                return 0
            _update(conn, broadcast_id, status="cancelled", finished_at=now())
            return _move(conn, broadcast_id, "queued", "cancelled") + _move(
                conn, broadcast_id, "paused", "cancelled"
            )

        return await self.db.run(go)

    # ---- A/B: the winner ------------------------------------------------------------------

    async def due_decisions(self, at: datetime) -> list[int]:
        """A/B broadcasts whose test has run its time: the winner to choose (and, with
        `send_winner: auto`, to send to the rest)."""
        return await self.db.run(variant_store.due_decisions, at)

    async def decide(self, broadcast_id: int, label: str | None, send: bool) -> Broadcast:
        """Mark the winner (`label`, else the one chosen before, else the best by the test's
        measure now); with `send`, start writing the rest's texts (once: `winner_sent_at`)."""

        def go(conn: Connection) -> Broadcast:
            b = _get(conn, broadcast_id, lock=True)
            if b.ab is None:
                raise Conflict(f"broadcast {broadcast_id} has no variants")
            if b.winner_sent_at is not None:
                raise Conflict(f"broadcast {broadcast_id}: the winner was already sent")
            if b.status != "sending" or b.decide_at is None:
                raise Conflict(f"broadcast {broadcast_id} is {b.status}; the winner is chosen "
                               "once its test texts are all written")  # fmt: skip
            if label is not None:
                winner = b.ab.by_label(label)
            else:
                stats = variant_store.variant_stats(conn, b.id, self._replies_query)
                winner = b.ab.winner or b.ab.by_label(pick_winner(stats, b.ab.winner_by))
            variant_store.mark_winner(conn, broadcast_id, winner)
            if send:
                # the held fans are not in the outbox yet: a pause and resume meanwhile must
                # go on enqueuing them (`resume` reads enqueued_at), not call it done
                _update(conn, broadcast_id, status="enqueuing", cursor=0, winner_sent_at=now(),
                        enqueued_at=None)  # fmt: skip
            return _get(conn, broadcast_id)

        return await self.db.run(go)

    # ---- enqueue one chunk ---------------------------------------------------------------

    async def enqueue_chunk(
        self, broadcast_id: int, parts: tuple[Part, ...], chunk: int, at: datetime | None = None
    ) -> ChunkResult:
        return await self.db.run(self._enqueue_chunk, broadcast_id, parts, chunk, at or now())

    def _enqueue_chunk(
        self,
        conn: Connection,
        broadcast_id: int,
        parts: tuple[Part, ...],
        chunk: int,
        at: datetime,
    ) -> ChunkResult:
        b = _get(conn, broadcast_id, lock=True)  # serialises enqueuers of one broadcast
        if b.status != "enqueuing":
            return ChunkResult(0, b.enqueued_at is not None, b.status)
        if b.ab is not None and b.winner_sent_at is not None:
            return self._enqueue_rest(conn, b, b.ab, chunk, at)
        r = broadcast_recipients.c
        ab = b.ab
        columns = [sa.literal(broadcast_id), contacts.c.id, sa.literal(at, TS)]
        if ab is not None:  # the test share gets a variant; the rest are held (NULL)
            columns.append(variant_store.variant_expr(b.id, ab))
        pick = (
            sa.select(*columns)
            .where(segment_condition(b.segment, self.dialect, at), contacts.c.id > b.cursor)
            .order_by(contacts.c.id)
            .limit(chunk)
        )
        names = ["broadcast_id", "contact_id", "created_at", "variant_id"][: len(columns)]
        conn.execute(broadcast_recipients.insert().from_select(names, pick))
        added, last = conn.execute(
            sa.select(sa.func.count(), sa.func.max(r.contact_id)).where(
                r.broadcast_id == broadcast_id, r.contact_id > b.cursor
            )
        ).one()
        if not added:
            decide = {"decide_at": at + timedelta(seconds=ab.decide_after_s)} if ab else {}
            _update(conn, broadcast_id, status="sending", enqueued_at=at, **decide)
            return ChunkResult(0, True, "sending")
        if ab is None:
            before = self._before(conn, b.body)
            texts = added
            self._insert_messages(conn, b, parts, at, chunk)
            self._shorten(conn, b, b.body, None, before)
        else:
            for v in ab.variants:
                self._insert_variant(conn, b, v, at, chunk)
            texts = conn.execute(  # the driver's rowcount of INSERT ... SELECT is not reliable
                sa.select(sa.func.count()).where(r.broadcast_id == broadcast_id,
                                                 r.contact_id > b.cursor, r.variant_id.is_not(None))
            ).scalar_one()  # fmt: skip
        _update(conn, broadcast_id, cursor=last, enqueued=b.enqueued + texts)
        return ChunkResult(texts, False, b.status)

    def _insert_variant(
        self, conn: Connection, b: Broadcast, v: Variant, at: datetime, chunk: int, *where: Any
    ) -> None:
        before = self._before(conn, v.body)
        r = broadcast_recipients.c
        self._insert_messages(
            conn, b, parse_template(v.body), at, chunk, r.variant_id == v.id, *where
        )
        self._shorten(conn, b, v.body, v.id, before)

    def _enqueue_rest(
        self, conn: Connection, b: Broadcast, ab: ABTest, chunk: int, at: datetime
    ) -> ChunkResult:
        """The winner's body to the held fans, chunk by chunk (cursor reset when it began)."""
        r = broadcast_recipients.c
        winner = ab.winner
        assert winner is not None and winner.id is not None  # set with winner_sent_at
        ids = list(
            conn.execute(
                sa.select(r.contact_id)
                .where(r.broadcast_id == b.id, r.variant_id.is_(None), r.contact_id > b.cursor)
                .order_by(r.contact_id)
                .limit(chunk)
            ).scalars()
        )
        if not ids:
            _update(conn, b.id, status="sending", enqueued_at=at)
            return ChunkResult(0, True, "sending")
        conn.execute(
            broadcast_recipients.update()
            .where(r.broadcast_id == b.id, r.contact_id.in_(ids), r.variant_id.is_(None))
            .values(variant_id=winner.id)
        )
        self._insert_variant(conn, b, winner, at, chunk, r.contact_id.in_(ids))
        texts = len(ids)
        _update(conn, b.id, cursor=max(ids), enqueued=b.enqueued + texts)
        return ChunkResult(texts, False, b.status)

    def _tracks(self, body: str) -> bool:
        return bool(self.link_base) and bool(find_urls(body))

    def _before(self, conn: Connection, body: str) -> int:
        """The last message id before a chunk's texts are written (only when they get links)."""
        return link_store.last_message_id(conn) if self._tracks(body) else 0

    def _shorten(
        self, conn: Connection, b: Broadcast, body: str, variant_id: int | None, after_id: int
    ) -> None:
        """The chunk's URLs become short links, in the chunk's transaction."""
        if self._tracks(body):
            spec = link_store.chunk_links(
                body, self.link_base, self.utm, {"broadcast": b.name}, b.id
            )
            link_store.shorten_messages(conn, spec, after_id, variant_id)

    def _insert_messages(
        self,
        conn: Connection,
        b: Broadcast,
        parts: tuple[Part, ...],
        at: datetime,
        chunk: int,
        *where: Any,
    ) -> None:
        r = broadcast_recipients.c
        quiet = QuietHours.parse(b.quiet_start, b.quiet_end)
        pace = _pace_expr(b, at, sa.func.row_number().over(order_by=r.contact_id), chunk)
        media = json.dumps(list(b.media_urls))
        cols = {
            "contact_id": r.contact_id,
            "direction": sa.literal("out"),
            "to_number": contacts.c.phone,
            "from_number": sa.literal(b.sender, sa.String),
            "body": body_expr(parts),
            "media_urls": sa.cast(sa.literal(media), sa.JSON)
            if self.dialect == "postgresql"
            else sa.literal(media),
            "kind": sa.literal("broadcast"),
            "status": sa.literal("queued"),
            "broadcast_id": r.broadcast_id,
            "variant_id": r.variant_id,  # NULL but on an A/B broadcast
            "private": sa.false(),
            "attempts": sa.literal(0),
            "not_before": sa.func.coalesce(quiet_expr(quiet, b.default_zone, at), pace),
            "created_at": sa.literal(at, TS),
        }
        select = (
            sa.select(*cols.values())
            .select_from(broadcast_recipients.join(contacts, contacts.c.id == r.contact_id))
            .where(r.broadcast_id == b.id, r.contact_id > b.cursor, *where)
        )
        conn.execute(messages.insert().from_select(list(cols), select, include_defaults=False))

    # ---- statistics ----------------------------------------------------------------------

    async def stats(self, broadcast_id: int) -> BroadcastStats:
        return await self.db.run(self._stats, broadcast_id)

    def _stats(self, conn: Connection, broadcast_id: int) -> BroadcastStats:
        b = _row(conn, broadcast_id)  # the raw row: a failed broadcast's segment may be broken
        m = messages.c
        mine = sa.and_(m.broadcast_id == broadcast_id, m.kind == "broadcast")
        rows = conn.execute(
            sa.select(m.status, m.error_code, sa.func.count(), sa.func.sum(m.segments))
            .where(mine)
            .group_by(m.status, m.error_code)
        ).all()
        by_status: dict[str, int] = defaultdict(int)
        failed: dict[str, int] = defaultdict(int)
        segments = 0
        for status, code, n, segs in rows:
            by_status[status] += n
            segments += int(segs or 0)
            if status in ("failed", "undelivered"):
                failed[str(code) if code is not None else "unknown"] += n
        return BroadcastStats(
            broadcast_id=broadcast_id, status=b.status, recipients=b.enqueued,
            by_status=dict(by_status), failed_by_code=dict(failed),
            opted_out_since=self._opted_out_since(conn, b), replied=self._replied(conn, b),
            segments_sent=segments, error=b.error, clicks=variant_store.clicks(conn, broadcast_id),
            variants=tuple(variant_store.variant_stats(conn, b.id, self._replies_query))
            if b.test_share is not None
            else (),
        )  # fmt: skip

    def _opted_out_since(self, conn: Connection, b: Any) -> int:
        if b.started_at is None:
            return 0
        r, ce = broadcast_recipients.c, consent_events.c
        return conn.execute(
            sa.select(sa.func.count(sa.distinct(ce.contact_id)))
            .select_from(consent_events.join(broadcast_recipients, r.contact_id == ce.contact_id))
            .where(r.broadcast_id == b.id, ce.action == "opt_out", ce.at >= b.started_at)
        ).scalar_one()

    def _replied(self, conn: Connection, b: Any) -> int:
        """Recipients who texted back within the reply window after their copy was sent."""
        return int(conn.execute(self._replies_query(b.id)).scalar_one())

    def _replies_query(self, broadcast_id: int, *group: Any) -> Any:
        """Count of the broadcast's texts answered within the reply window, a STOP not counted
        (by `group`: the recipients' variant)."""
        out, inbound = messages.alias("bout"), messages.alias("bin")
        if self.dialect == "postgresql":
            until = out.c.sent_at + self.store.reply_window
        else:  # SQLite keeps timestamps as ISO text; datetime() shifts one
            seconds = int(self.store.reply_window.total_seconds())
            until = sa.func.datetime(out.c.sent_at, f"+{seconds} seconds")
        source: Any = out
        if group:
            r = broadcast_recipients.c
            source = out.join(
                broadcast_recipients,
                sa.and_(r.broadcast_id == out.c.broadcast_id, r.contact_id == out.c.contact_id),
            )
        return (
            sa.select(*group, sa.func.count()).select_from(source).where(
                out.c.broadcast_id == broadcast_id, out.c.kind == "broadcast",
                out.c.sent_at.is_not(None),
                sa.exists().where(
                    inbound.c.contact_id == out.c.contact_id, inbound.c.direction == "in",
                    inbound.c.created_at >= out.c.sent_at, inbound.c.created_at <= until,
                    ~opt_out_text(inbound.c.id),  # a STOP is no reply
                ),
            )
        )  # fmt: skip


# ---- SQL expressions ---------------------------------------------------------------------


def body_expr(parts: tuple[Part, ...]) -> Any:
    """The personalised text as SQL: literals || coalesce(nullif(profile field, ''), fallback)."""
    pieces: list[Any] = []
    for part in parts:
        if isinstance(part, Placeholder):
            value = sa.func.nullif(field(part.name), "")
            if part.name not in linkish.EXEMPT:  # a link-like fan field: the fallback
                value = sa.case((value.regexp_match(linkish.PATTERN, "i"), None), else_=value)
            pieces.append(sa.func.coalesce(value, part.fallback))
        else:
            pieces.append(sa.literal(part, sa.String))
    if not pieces:
        return sa.literal("", sa.String)
    expr = pieces[0]
    for piece in pieces[1:]:
        expr = expr.op("||")(piece)
    return sa.type_coerce(expr, sa.String)


def quiet_expr(quiet: QuietHours, default_zone: str, at: datetime) -> Any:
    """When each fan's window opens (UTC), or NULL when it is open at `at`.

    The fan's zone is found as in `bot.audience.quiet_hours.zone_for_fan`; only zones that are closed
    now get CASE branches, so in the daytime the expression is short.
    """
    zip_map = {f"{p:03d}": z for p, z in zip3_zones().items()}
    phone_maps: dict[int, dict[str, str]] = defaultdict(dict)
    for prefix, zone in phone_prefix_zones().items():
        phone_maps[len(prefix)][prefix] = zone
    zones = sorted({*zip_map.values(), *phone_prefix_zones().values(), default_zone})
    closed = {z: t for z in zones if (t := quiet.opens_at(z, at)) is not None}
    if not closed:
        return sa.cast(sa.null(), TS)

    def pick(key: Any, mapping: dict[str, str]) -> Any:
        groups: dict[datetime, list[str]] = defaultdict(list)
        for k, zone in mapping.items():
            if zone in closed:
                groups[closed[zone]].append(k)
        whens = [(key.in_(keys), sa.literal(t, TS)) for t, keys in sorted(groups.items())]
        return sa.case(*whens, else_=sa.cast(sa.null(), TS)) if whens else sa.cast(sa.null(), TS)

    tz = field("timezone")
    branches = [(tz.in_(zones), pick(tz, {z: z for z in zones}))]
    branches.append((sa.and_(sa.func.length(field("zip")) >= 5, zip3().in_(list(zip_map))),
                     pick(zip3(), zip_map)))  # fmt: skip
    for length in sorted(phone_maps, reverse=True):  # longest prefix first
        key = sa.func.substr(contacts.c.phone, 2, length)
        branches.append((key.in_(list(phone_maps[length])), pick(key, phone_maps[length])))
    default = closed.get(default_zone)
    else_ = sa.literal(default, TS) if default else sa.cast(sa.null(), TS)
    return sa.type_coerce(sa.case(*branches, else_=else_), TS)


def _pace_expr(b: Broadcast, at: datetime, row_number: Any, chunk: int) -> Any:
    """Spread a chunk over time at the broadcast's rate, in at most MAX_PACE_BUCKETS steps.

    Paced rows are not due all at once, so replies to fans never queue behind a whole
    broadcast; the sender's token bucket does the fine-grained pacing within a step.
    """
    rate = max(b.rate, 0.001)
    start = max(at, (b.started_at or at) + timedelta(seconds=b.enqueued / rate))
    step = max(math.ceil(rate), math.ceil(chunk / MAX_PACE_BUCKETS), 1)
    buckets = math.ceil(chunk / step)
    if buckets <= 1:
        return sa.literal(start, TS)
    whens = [
        (row_number <= (k + 1) * step, sa.literal(start + timedelta(seconds=k * step / rate), TS))
        for k in range(buckets - 1)
    ]
    last = start + timedelta(seconds=(buckets - 1) * step / rate)
    return sa.type_coerce(sa.case(*whens, else_=sa.literal(last, TS)), TS)


# ---- rows --------------------------------------------------------------------------------


def _get(conn: Connection, broadcast_id: int, lock: bool = False) -> Broadcast:
    row = _row(conn, broadcast_id, lock)
    b = _broadcast(row)
    return b if row.test_share is None else replace(b, ab=variant_store.load_ab(conn, row))


def _row(conn: Connection, broadcast_id: int, lock: bool = False) -> Any:
    """The stored row as it is (status changes need no segment, which may be what is broken)."""
    query = sa.select(broadcasts).where(broadcasts.c.id == broadcast_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    elif lock:  # SQLite: a write first takes the database's write lock before the row is read
        # (the driver begins a transaction only at the first write, so a read before it could
        # be stale by the time we write: two processes would enqueue the same chunk)
        conn.execute(
            broadcasts.update().where(broadcasts.c.id == broadcast_id).values(id=broadcasts.c.id)
        )
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no broadcast {broadcast_id}")
    return row


def _update(conn: Connection, broadcast_id: int, **values: Any) -> None:
    conn.execute(broadcasts.update().where(broadcasts.c.id == broadcast_id).values(**values))


def _move(conn: Connection, broadcast_id: int, old: str, new: str) -> int:
    m = messages.c
    result = conn.execute(
        messages.update()
        .where(m.broadcast_id == broadcast_id, m.kind == "broadcast", m.status == old)
        .values(status=new)
    )
    return result.rowcount or 0


def _broadcast(row: Any, strict: bool = True) -> Broadcast:
    """The row as a Broadcast. Not `strict` (listings): a stored segment that no longer
    validates is shown by its error, as a segment that matches nobody; sending always reads
    the row strictly."""
    name = f"broadcast {row.id}"
    try:
        segment = Segment.from_json({"name": name, **(row.segment or {})})
    except ConfigError as exc:
        if strict:
            raise
        segment = Segment(name, description=f"invalid: {exc.message}", tags=(INVALID,))
    return Broadcast(
        id=row.id, name=row.name, body=row.body, media_urls=tuple(row.media_urls or ()),
        segment=segment,
        status=row.status, sender=row.sender, rate=row.rate, quiet_start=row.quiet_start,
        quiet_end=row.quiet_end, default_zone=row.default_zone, send_at=_utc(row.send_at),
        cursor=row.cursor, enqueued=row.enqueued, created_at=_utc(row.created_at),
        started_at=_utc(row.started_at), enqueued_at=_utc(row.enqueued_at),
        finished_at=_utc(row.finished_at), error=row.error, decide_at=_utc(row.decide_at),
        winner_sent_at=_utc(row.winner_sent_at),
    )  # fmt: skip


def _utc(value: datetime | None) -> Any:
    """SQLite hands back naive datetimes (stored as UTC); make them aware again."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
