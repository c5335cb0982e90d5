"""The reports' SQL: a broadcast's texts and what its fans did, the line per day, flow funnels,
top topics. Read only; every query is one aggregate that an index of migration 0015 serves
(`bench/reports.py` times each on a million fans and ten million texts).

Days are UTC days. A fan's reply to a broadcast is the pipeline's own link (an inbound text's
`broadcast_id`: the fan's latest broadcast within the reply window); opt-outs and hand-offs
count within `window` after the fan's own text was sent.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
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
from bot.storage.broadcast_tables import broadcasts
from bot.storage.engagement_tables import broadcast_variants, link_clicks, links
from bot.storage.tables import consent_events, contacts, escalations, events, messages
from bot.storage.topic_tables import topics

SENT = ("sent", "delivered", "read", "undelivered", "failed")
DELIVERED = ("delivered", "read")
FAILED = ("failed", "undelivered")
JOINED = ("opt_in", "resubscribe")


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


def variant_of_message() -> Any:
    """The broadcast text's variant id column, when A/B broadcasts have added one."""
    return messages.c.get("variant_id")


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
    _sends(conn, b.id, counts)
    _clicks(conn, b.id, counts)
    _replies(conn, b.id, counts)
    start = b.started_at or b.created_at
    end = (b.finished_at or now) + window
    _after(conn, b.id, counts, "opt_outs", consent_events, consent_events.c.at, start, end, window,
           consent_events.c.action == "opt_out")  # fmt: skip
    _after(conn, b.id, counts, "hand_offs", escalations, escalations.c.created_at, start, end,
           window)  # fmt: skip
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


def _variant_key(column: Any) -> Any:
    return column if column is not None else sa.literal(None, sa.Integer)


def _sends(conn: Connection, broadcast_id: int, counts: dict[Any, dict[str, Any]]) -> None:
    m = messages.c
    variant = _variant_key(variant_of_message())
    rows = conn.execute(
        sa.select(variant.label("v"), m.status, m.error_code, sa.func.count())
        .where(m.broadcast_id == broadcast_id, m.kind == "broadcast")
        .group_by(variant, m.status, m.error_code)
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


def _clicks(conn: Connection, broadcast_id: int, counts: dict[Any, dict[str, Any]]) -> None:
    lk, cl = links.c, link_clicks.c
    rows = conn.execute(
        sa.select(lk.variant_id, sa.func.count(sa.distinct(lk.contact_id)))
        .select_from(links.join(link_clicks, cl.link_id == lk.id))
        .where(lk.broadcast_id == broadcast_id, cl.agent_kind == "human")
        .group_by(lk.variant_id)
    )
    for v, n in rows:
        counts[v]["clicks"] += n


def _replies(conn: Connection, broadcast_id: int, counts: dict[Any, dict[str, Any]]) -> None:
    inbound = messages.c
    copy = messages.alias("copy")
    variant = _variant_key(copy.c.get("variant_id"))
    fans = (
        sa.select(inbound.contact_id)
        .where(inbound.broadcast_id == broadcast_id, inbound.direction == "in")
        .distinct()
        .subquery()
    )
    rows = conn.execute(
        sa.select(variant.label("v"), sa.func.count())
        .select_from(fans.join(copy, sa.and_(
            copy.c.contact_id == fans.c.contact_id, copy.c.broadcast_id == broadcast_id,
            copy.c.kind == "broadcast")))
        .group_by(variant)
    )  # fmt: skip
    for v, n in rows:
        counts[v]["replies"] += n


def _after(
    conn: Connection,
    broadcast_id: int,
    counts: dict[Any, dict[str, Any]],
    key: str,
    table: sa.Table,
    at: Any,
    start: datetime,
    end: datetime,
    window: timedelta,
    *where: Any,
) -> None:
    """Fans with a row of `table` within `window` after their copy was sent: read from the
    period's rows (few) to each fan's copy (an index lookup), never from every recipient."""
    copy = messages.alias("copy")
    variant = _variant_key(copy.c.get("variant_id"))
    found = (
        sa.select(variant.label("v"), table.c.contact_id)
        .select_from(table.join(copy, sa.and_(
            copy.c.contact_id == table.c.contact_id, copy.c.broadcast_id == broadcast_id,
            copy.c.kind == "broadcast")))
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
    m = messages.c
    d = day_of(conn, m.created_at)
    bot_answered = sa.case((sa.and_(m.status == "processed", m.escalation_id.is_(None)), 1),
                           else_=0)  # fmt: skip
    for day, n, answered in conn.execute(
        sa.select(d, sa.func.count(), sa.func.sum(bot_answered))
        .where(m.direction == "in", m.created_at >= since, m.created_at < until)
        .group_by(d)
    ):
        per[day].update(texts_in=n, answered_by_bot=int(answered or 0))
    e = escalations.c
    d = day_of(conn, e.created_at)
    waits: dict[str, list[float]] = defaultdict(list)
    for day, n, in conn.execute(
        sa.select(d, sa.func.count())
        .where(e.created_at >= since, e.created_at < until)
        .group_by(d)
    ):  # fmt: skip
        per[day]["hand_offs"] = n
    for day, secs in conn.execute(
        sa.select(d, seconds_between(conn, e.created_at, e.first_response_at)).where(
            e.created_at >= since, e.created_at < until, e.first_response_at.is_not(None)
        )
    ):
        waits[day].append(float(secs))
    for day, values in waits.items():
        per[day]["first_answer_median_s"] = statistics.median(values)
    ce = consent_events.c
    d = day_of(conn, ce.at)
    for day, action, n in conn.execute(
        sa.select(d, ce.action, sa.func.count())
        .where(ce.at >= since, ce.at < until)
        .group_by(d, ce.action)
    ):
        field = "opt_ins" if action in JOINED else "opt_outs" if action == "opt_out" else None
        if field:
            per[day][field] = per[day].get(field, 0) + n
    return _with_list_size(conn, since, until, per)


def _with_list_size(
    conn: Connection, since: datetime, until: datetime, per: dict[str, dict[str, Any]]
) -> list[Day]:
    """Subscribed fans at each day's end: today's count, walked back through the ledger."""
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
    """Fans who started each flow, and who reached each of its steps, in the period."""
    ev = events.c
    flow = ev.data["flow"].as_string()
    step = ev.data["step"].as_string()
    rows = conn.execute(
        sa.select(flow, ev.type, step, sa.func.count(sa.distinct(ev.contact_id)))
        .where(ev.type.in_(("flow_started", "step")), ev.at >= since, ev.at < until)
        .group_by(flow, ev.type, step)
    ).all()
    started: dict[str, int] = {}
    reached: dict[str, list[FunnelStep]] = defaultdict(list)
    for f, kind, s, n in rows:
        if f is None:
            continue
        if kind == "flow_started":
            started[f] = n
        elif s is not None:
            reached[f].append(FunnelStep(s, n))
    out = []
    for f in sorted(set(started) | set(reached), key=lambda f: (-started.get(f, 0), f)):
        steps = sorted(reached.get(f, []), key=lambda s: (-s.fans, s.step))
        out.append(Funnel(f, (FunnelStep("started", started.get(f, 0)), *steps)))
    return out


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
