"""The reports' SQL: a broadcast's texts and what its fans did, the line per day, flow funnels,
top topics. Read only; every query is one aggregate that an index of migrations 0016-0017 serves
(`bench/reports.py` times each on a million fans and ten million texts).

Days are UTC days. A fan's reply to a broadcast is the pipeline's own link (an inbound text's
`broadcast_id`: the fan's latest broadcast within the reply window); opt-outs and hand-offs
count within `window` after the fan's own text was sent.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audience.report_model import (
    BroadcastReport,
    Day,
    Funnel,
    FunnelStep,
    SendFigures,
    TopTopic,
)
from bot.errors import NotFound
from bot.storage.broadcast_tables import broadcast_recipients, broadcasts
from bot.storage.engagement_tables import broadcast_variants, link_clicks, links
from bot.storage.tables import consent_events, contacts, escalations, events, messages
from bot.storage.topic_tables import topics

SENT = ("sent", "delivered", "read", "undelivered", "failed")
DELIVERED = ("delivered", "read")
FAILED = ("failed", "undelivered")
JOINED = ("opt_in", "resubscribe")
Counts = dict[Any, dict[str, Any]]  # variant id (None: no variant) -> figure -> value


def _dialect(conn: Connection) -> str:
    return conn.dialect.name


def day_of(conn: Connection, column: Any) -> Any:
    """The UTC day of a timestamp as 'YYYY-MM-DD' (SQLite keeps timestamps as ISO text)."""
    if _dialect(conn) == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)


def seconds_between(conn: Connection, start: Any, end: Any) -> Any:
    if _dialect(conn) == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def plus(conn: Connection, column: Any, delta: timedelta) -> Any:
    if _dialect(conn) == "postgresql":
        return column + sa.literal(delta, sa.Interval)
    return sa.func.datetime(column, f"+{int(delta.total_seconds())} seconds")


# ---- one broadcast -----------------------------------------------------------------------


def broadcast_report(
    conn: Connection, broadcast_id: int, window: timedelta, now: datetime
) -> BroadcastReport:
    b = conn.execute(sa.select(broadcasts).where(broadcasts.c.id == broadcast_id)).first()
    if b is None:
        raise NotFound(f"no broadcast {broadcast_id}")
    labels = {
        r.id: (r.label, r.winner)
        for r in conn.execute(
            sa.select(broadcast_variants).where(broadcast_variants.c.broadcast_id == b.id)
        )
    }
    counts: dict[Any, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    ab = bool(labels)  # only an A/B broadcast's figures need each fan's variant
    sends(conn, b.id, counts)
    clicks(conn, b.id, counts)
    replies(conn, b.id, ab, counts)
    start = b.started_at or b.created_at
    end = (b.finished_at or now) + window
    after(conn, b.id, ab, counts, "opt_outs", consent_events, consent_events.c.at,
          (start, end, window), consent_events.c.action == "opt_out")  # fmt: skip
    after(conn, b.id, ab, counts, "hand_offs", escalations, escalations.c.created_at,
          (start, end, window))  # fmt: skip
    total = _figures("all", _sum(counts.values()))
    variants = tuple(
        _figures(label, counts.get(vid, {}), winner)
        for vid, (label, winner) in sorted(labels.items(), key=lambda kv: kv[1][0])
    )
    return BroadcastReport(
        id=b.id, name=b.name, status=b.status, started_at=b.started_at,
        window_h=int(window.total_seconds() // 3600), total=total, variants=variants,
    )  # fmt: skip


def recent_broadcasts(conn: Connection, since: datetime, limit: int) -> list[int]:
    """The newest broadcasts that started in the period (or are still to start)."""
    c = broadcasts.c
    started = sa.func.coalesce(c.started_at, c.created_at)
    rows = conn.execute(
        sa.select(c.id).where(started >= since).order_by(started.desc(), c.id.desc()).limit(limit)
    )
    return [r.id for r in rows]


def _variant(broadcast_id: int, ab: bool, source: Any, contact_id: Any) -> tuple[Any, Any]:
    """(from clause, variant id): the fan's variant from their recipient row (A/B only)."""
    if not ab:
        return source, sa.literal(None, sa.Integer)
    r = broadcast_recipients.c
    joined = source.join(broadcast_recipients, sa.and_(
        r.broadcast_id == broadcast_id, r.contact_id == contact_id))  # fmt: skip
    return joined, r.variant_id


def _inline(value: str) -> Any:
    """A constant written into the SQL, so a partial index on it can serve the query."""
    return sa.literal(value, literal_execute=True)


def sends(conn: Connection, broadcast_id: int, counts: Counts) -> None:
    """Texts by variant, status and error code: each text carries its variant (NULL but on an
    A/B broadcast), so one index serves it without a row read or a join."""
    m = messages.c
    rows = conn.execute(
        sa.select(m.variant_id, m.status, m.error_code, sa.func.count())
        .where(m.broadcast_id == broadcast_id, m.kind == _inline("broadcast"))
        .group_by(m.variant_id, m.status, m.error_code)
    )
    for v, status, code, n in rows:
        c = counts[v]
        if status in SENT:
            c["sent"] += n
        if status in DELIVERED:
            c["delivered"] += n
        if status in FAILED:
            c["failed"] += n
            c["codes"] = {**c.get("codes", {})}
            key = str(code) if code is not None else "unknown"
            c["codes"][key] = c["codes"].get(key, 0) + n
        elif status == "skipped":
            c["skipped"] += n
        elif status not in SENT and status != "cancelled":
            c["queued"] += n


def clicks(conn: Connection, broadcast_id: int, counts: Counts) -> None:
    lk, cl = links.c, link_clicks.c
    rows = conn.execute(
        sa.select(lk.variant_id, sa.func.count(sa.distinct(lk.contact_id)))
        .select_from(links.join(link_clicks, cl.link_id == lk.id))
        .where(lk.broadcast_id == broadcast_id, cl.agent_kind == "human")
        .group_by(lk.variant_id)
    )
    for v, n in rows:
        counts[v]["clicks"] += n


def opt_out_text(message_id: Any) -> Any:
    """The fan's text opted them out (or repeated a STOP): its turn's compliance event says so.
    Such a text is no reply to a broadcast (opt-outs are counted on their own)."""
    ev = events.c
    return sa.exists().where(
        ev.message_id == message_id,
        ev.type == _inline("compliance"),  # the constant: ix_events_compliance is partial on it
        ev.data["kind"].as_string() == "opt_out",
    )


def replies(conn: Connection, broadcast_id: int, ab: bool, counts: Counts) -> None:
    """Fans whose text the pipeline linked to the broadcast, a STOP not counted."""
    m = messages.c
    fans = (
        sa.select(m.contact_id)
        .where(m.broadcast_id == broadcast_id, m.direction == _inline("in"), ~opt_out_text(m.id))
        .distinct()
        .subquery()
    )
    source, variant = _variant(broadcast_id, ab, fans, fans.c.contact_id)
    rows = conn.execute(
        sa.select(variant.label("v"), sa.func.count()).select_from(source).group_by(variant)
    )
    for v, n in rows:
        counts[v]["replies"] += n


def after(
    conn: Connection,
    broadcast_id: int,
    ab: bool,
    counts: Counts,
    key: str,
    table: sa.Table,
    at: Any,
    span: tuple[datetime, datetime, timedelta],
    *where: Any,
) -> None:
    """Fans with a row of `table` within the window after their copy was sent: read from the
    period's rows (few) to each fan's copy (an index lookup), never from every recipient."""
    start, end, window = span
    copy = messages.alias("copy")
    joined = table.join(copy, sa.and_(
        copy.c.contact_id == table.c.contact_id, copy.c.broadcast_id == broadcast_id,
        copy.c.kind == _inline("broadcast")))  # fmt: skip
    source, variant = _variant(broadcast_id, ab, joined, table.c.contact_id)
    found = (
        sa.select(variant.label("v"), table.c.contact_id)
        .select_from(source)
        .where(at >= start, at <= end, *where, copy.c.sent_at.is_not(None),
               at >= copy.c.sent_at, at <= plus(conn, copy.c.sent_at, window))
        .distinct()
        .subquery()
    )  # fmt: skip
    rows = conn.execute(sa.select(found.c.v, sa.func.count()).group_by(found.c.v))
    for v, n in rows:
        counts[v][key] += n


def _sum(parts: Any) -> dict[str, Any]:
    total: dict[str, Any] = defaultdict(int)
    codes: dict[str, int] = defaultdict(int)
    for c in parts:
        for k, v in c.items():
            if k == "codes":
                for code, n in v.items():
                    codes[code] += n
            else:
                total[k] += v
    total["codes"] = dict(codes)
    return total


def _figures(label: str, c: dict[str, Any], winner: bool = False) -> SendFigures:
    return SendFigures(
        label=label, sent=c.get("sent", 0), delivered=c.get("delivered", 0),
        failed=c.get("failed", 0), skipped=c.get("skipped", 0), queued=c.get("queued", 0),
        failed_by_code=dict(sorted(c.get("codes", {}).items())), clicks=c.get("clicks", 0),
        replies=c.get("replies", 0), opt_outs=c.get("opt_outs", 0),
        hand_offs=c.get("hand_offs", 0), winner=winner,
    )  # fmt: skip


# ---- the line per day --------------------------------------------------------------------


def days(conn: Connection, since: datetime, until: datetime) -> list[Day]:
    """One row per UTC day from `since` to `until`, days with nothing included."""
    per: dict[str, dict[str, Any]] = defaultdict(dict)
    for query in (texts_per_day, hand_offs_per_day, first_answers_per_day, consent_per_day):
        for day, values in query(conn, since, until).items():
            per[day].update(values)
    return _with_list_size(conn, since, until, per)


PerDay = dict[str, dict[str, Any]]


def texts_per_day(conn: Connection, since: datetime, until: datetime) -> PerDay:
    """Texts in, and those the bot answered itself: `processed` without a hand-off (not `held`
    for a person, nor `ignored`: an opted-out fan's text is stored and never answered)."""
    m = messages.c
    d = day_of(conn, m.created_at)
    bot_answered = sa.case((sa.and_(m.status == "processed", m.escalation_id.is_(None)), 1),
                           else_=0)  # fmt: skip
    rows = conn.execute(
        sa.select(d, sa.func.count(), sa.func.sum(bot_answered))
        .where(m.direction == _inline("in"), m.created_at >= since, m.created_at < until)
        .group_by(d)
    )
    return {
        day: {"texts_in": n, "answered_by_bot": int(answered or 0)} for day, n, answered in rows
    }


def hand_offs_per_day(conn: Connection, since: datetime, until: datetime) -> PerDay:
    e = escalations.c
    d = day_of(conn, e.created_at)
    rows = conn.execute(
        sa.select(d, sa.func.count()).where(e.created_at >= since, e.created_at < until).group_by(d)
    )
    return {day: {"hand_offs": n} for day, n in rows}


def first_answers_per_day(conn: Connection, since: datetime, until: datetime) -> PerDay:
    """The median wait from hand-off to a person's first answer, per day of the hand-off."""
    e = escalations.c
    waits: dict[str, list[float]] = defaultdict(list)
    for day, secs in conn.execute(
        sa.select(day_of(conn, e.created_at), seconds_between(conn, e.created_at,
                                                              e.first_response_at))
        .where(e.created_at >= since, e.created_at < until, e.first_response_at.is_not(None))
    ):  # fmt: skip
        waits[day].append(float(secs))
    return {day: {"first_answer_median_s": round(statistics.median(v), 1)}
            for day, v in waits.items()}  # fmt: skip


def consent_per_day(conn: Connection, since: datetime, until: datetime) -> PerDay:
    ce = consent_events.c
    d = day_of(conn, ce.at)
    per: PerDay = defaultdict(dict)
    for day, action, n in conn.execute(
        sa.select(d, ce.action, sa.func.count())
        .where(ce.at >= since, ce.at < until)
        .group_by(d, ce.action)
    ):
        field = "opt_ins" if action in JOINED else "opt_outs" if action == "opt_out" else None
        if field:
            per[day][field] = per[day].get(field, 0) + n
    return per


def subscribed_now(conn: Connection, until: datetime) -> int:
    """Subscribed fans at `until`: today's count less the ledger's changes since."""
    size = conn.execute(
        sa.select(sa.func.count()).where(contacts.c.subscription == "subscribed")
    ).scalar_one()
    ce = consent_events.c
    joined_later = sa.func.sum(sa.case((ce.action.in_(JOINED), 1), else_=-1))
    size -= int(
        conn.execute(
            sa.select(joined_later).where(ce.at >= until, ce.action.in_((*JOINED, "opt_out")))
        ).scalar_one()
        or 0
    )
    return int(size)


def _with_list_size(conn: Connection, since: datetime, until: datetime, per: PerDay) -> list[Day]:
    """Subscribed fans at each day's end, walked back from `until` through each day's changes."""
    size = subscribed_now(conn, until)
    out: list[Day] = []
    first = since.date()
    day = (until - timedelta(microseconds=1)).date()
    while day >= first:
        row = per.get(day.isoformat(), {})
        out.append(Day(day=day, list_size=size, **row))
        size -= row.get("opt_ins", 0) - row.get("opt_outs", 0)
        day -= timedelta(days=1)
    return out[::-1]


# ---- flow funnels and topics -------------------------------------------------------------


def funnels(conn: Connection, since: datetime, until: datetime) -> list[Funnel]:
    """Fans who started each flow, and who reached each of its steps, in the period.

    Read group by group from `ix_events_flow` (type, flow, step, at, contact_id): each flow and
    step found by one seek (a loose index scan: there are few), then that group's fans counted
    in its own range of the period. One GROUP BY over the period would sort every flow event
    of it (a million: seconds); this sorts nothing but each group's fans, with or without the
    planner's statistics, on either database."""
    started: dict[str, int] = {}
    reached: dict[str, list[FunnelStep]] = defaultdict(list)
    for flow, _ in _flow_groups(conn, "flow_started"):
        if n := _fans_in(conn, "flow_started", flow, None, since, until):
            started[flow] = n
    for flow, step in _flow_groups(conn, "step"):
        if n := _fans_in(conn, "step", flow, step, since, until):
            reached[flow].append(FunnelStep(step, n))
    out = []
    for f in sorted(set(started) | set(reached), key=lambda f: (-started.get(f, 0), f)):
        steps = sorted(reached.get(f, []), key=lambda s: (-s.fans, s.step))
        out.append(Funnel(f, (FunnelStep("started", started.get(f, 0)), *steps)))
    return out


FLOW_EVENTS = ("flow_started", "step")


def _of_kind(kind: str) -> tuple[Any, ...]:
    """The partial index's own condition (written out: SQLite uses a partial index only for a
    query that names it) and the kind, as constants."""
    t = events.c.type
    return t.in_([_inline(k) for k in FLOW_EVENTS]), t == _inline(kind)


def _flow_groups(conn: Connection, kind: str) -> Iterator[tuple[str, str | None]]:
    """Each (flow, step) of this kind of event, in index order, one seek each; a flow's start
    has no step (NULL: it is grouped by flow alone), a step without its name is left out."""
    ev = events.c
    first = sa.select(ev.flow, ev.step).where(*_of_kind(kind), ev.flow.is_not(None))
    if kind == "flow_started":
        first = first.where(ev.step.is_(None))
    else:
        first = first.where(ev.step.is_not(None))
    first = first.order_by(ev.flow, ev.step).limit(1)
    row = conn.execute(first).first()
    while row is not None:
        yield row.flow, row.step
        after = None
        if row.step is not None:  # the flow's next step
            after = conn.execute(first.where(ev.flow == row.flow, ev.step > row.step)).first()
        row = after or conn.execute(first.where(ev.flow > row.flow)).first()


def _fans_in(
    conn: Connection, kind: str, flow: str, step: str | None, since: datetime, until: datetime
) -> int:
    ev = events.c
    return int(
        conn.execute(
            sa.select(sa.func.count(sa.distinct(ev.contact_id))).where(
                *_of_kind(kind), ev.flow == flow,
                ev.step.is_(None) if step is None else ev.step == step,
                ev.at >= since, ev.at < until,
            )
        ).scalar_one()
    )  # fmt: skip


def top_topics(conn: Connection, since: datetime, limit: int) -> list[TopTopic]:
    t = topics.c
    rows = conn.execute(
        sa.select(t.id, t.label, t.size, t.status, t.broadcast_id)
        .where(t.updated_at >= since, t.status != "merged", t.size > 0)
        .order_by(t.size.desc(), t.id)
        .limit(limit)
    )
    return [TopTopic(r.id, r.label or f"topic {r.id}", r.size, r.status, r.broadcast_id)
            for r in rows]  # fmt: skip
