"""SQL of the timed-flow scheduler (`bot.audience.scheduler`): find due jobs, claim, finish.

Exactly-once lives in the database: a job row is unique per (fan, flow, trigger, occurrence)
and inserted with ON CONFLICT DO NOTHING, so a trigger read twice (two schedulers, a scan that
overlaps the last one) adds nothing; a job is claimed `due -> running` by one conditional
UPDATE (a `running` job whose lease lapsed is taken again, its `attempts` raised), and its texts
are written in the same transaction as `running -> done`, conditional on the attempt it claimed:
a stalled runner whose job was taken over writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.domain import TurnRecord
from bot.storage import link_store, tag_store
from bot.storage.broadcast_tables import broadcast_recipients
from bot.storage.engagement_tables import fan_tags, flow_jobs, link_clicks, links, scheduler_cursors
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    events,
    flow_columns,
    messages,
)

_j = flow_jobs.c
LATE = timedelta(days=1)  # a job found later than this after it was due is not started
SUBSCRIBED = contacts.c.subscription == "subscribed"


@dataclass(frozen=True, slots=True)
class FlowJob:
    id: int
    contact_id: int
    flow: str
    trigger: str
    occurrence: str
    step: str | None
    attempts: int  # after the claim: the finish is conditional on it
    due_at: datetime | None = None


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either database."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


# ---- cursors -----------------------------------------------------------------------------------


def cursor(conn: Connection, name: str) -> int | None:
    row = conn.execute(
        sa.select(scheduler_cursors.c.position).where(scheduler_cursors.c.name == name)
    ).first()
    return None if row is None else int(row.position)


def move_cursor(conn: Connection, name: str, position: int, at: datetime) -> None:
    c = scheduler_cursors.c
    done = conn.execute(
        scheduler_cursors.update()
        .where(c.name == name, c.position < position)
        .values(position=position, updated_at=at)
    ).rowcount
    if not done:
        conn.execute(
            insert_ignore(conn, scheduler_cursors).values(
                name=name, position=position, updated_at=at
            )
        )


# ---- finding due jobs (set-based: INSERT ... SELECT) ---------------------------------------------


def _insert_from(conn: Connection, select: sa.Select[Any]) -> int:
    cols = ["contact_id", "flow", "trigger", "occurrence", "due_at", "status", "attempts",
            "created_at"]  # fmt: skip
    return conn.execute(insert_ignore(conn, flow_jobs).from_select(cols, select)).rowcount or 0


def _job_cols(flow: str, trigger: str, occurrence: Any, due: Any, at: datetime) -> list[Any]:
    return [
        sa.literal(flow).label("flow"), sa.literal(trigger).label("trigger"),
        (occurrence if isinstance(occurrence, sa.ColumnElement)
         else sa.literal(occurrence)).label("occurrence"),
        (due if isinstance(due, sa.ColumnElement)
         else sa.literal(due, flow_jobs.c.due_at.type)).label("due_at"),
        sa.literal("due").label("status"), sa.literal(0).label("attempts"),
        sa.literal(at, flow_jobs.c.created_at.type).label("created_at"),
    ]  # fmt: skip


def after_signup(
    conn: Connection, flows: Sequence[tuple[str, timedelta]], upto: datetime, at: datetime
) -> int:
    """Jobs for opt-ins recorded since the cursor (up to `upto`: on PostgreSQL a lower id may
    still be in flight). Once per fan and flow, whatever resubscribes later; an opt-in whose
    text would be more than `LATE` late is left (a line that turns a welcome series on does
    not text its whole list)."""
    ce = consent_events.c
    start = cursor(conn, "after_signup") or 0
    last = conn.execute(sa.select(sa.func.max(ce.id)).where(ce.id > start, ce.at <= upto)).scalar()
    if last is None:
        return 0
    added = 0
    for flow, delay in flows:
        found = conn.execute(
            sa.select(ce.contact_id, ce.at).where(
                ce.id > start, ce.id <= last, ce.action.in_(("opt_in", "resubscribe")),
                ce.at >= at - delay - LATE,
            )
        )  # fmt: skip
        rows = [{"contact_id": r.contact_id, "due_at": _aware(r.at) + delay} for r in found]
        added += insert_jobs(conn, flow, "after_signup", rows, at)
    move_cursor(conn, "after_signup", last, at)
    return added


def insert_jobs(
    conn: Connection, flow: str, trigger: str, rows: Iterable[dict[str, Any]], at: datetime
) -> int:
    """Rows of contact_id, due_at (and occurrence, step); those already there are left."""
    batch = [
        {"contact_id": r["contact_id"], "flow": flow, "trigger": trigger,
         "occurrence": r.get("occurrence", ""), "step": r.get("step"),
         "due_at": _aware(r["due_at"]), "status": "due", "attempts": 0, "created_at": at}
        for r in rows
    ]  # fmt: skip
    # RETURNING counts the rows added on both databases (an executemany's rowcount may be -1)
    insert = insert_ignore(conn, flow_jobs).returning(_j.id)
    return sum(
        len(conn.execute(insert, batch[i : i + 5000]).all()) for i in range(0, len(batch), 5000)
    )


def birthdays(conn: Connection, month_days: Sequence[str], contact_id: int | None = None) -> Any:
    """Subscribed fans whose birthday (profile, ISO date) falls on one of these MM-DD."""
    born = contacts.c.profile["birthday"].as_string()
    query = sa.select(contacts.c.id, contacts.c.phone, contacts.c.profile).where(
        SUBSCRIBED, sa.func.substr(born, 6, 5).in_(list(month_days))
    )
    if contact_id is not None:
        query = query.where(contacts.c.id == contact_id)
    return conn.execute(query).all()


def at_time(
    conn: Connection, flow: str, when: datetime, at: datetime, contact_id: int | None = None
) -> int:
    """Every subscribed fan (or one), once the flow's `at` has come (occurrence: the instant,
    so a date moved in the content is a new occurrence)."""
    occurrence = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    select = sa.select(contacts.c.id, *_job_cols(flow, "at", occurrence, when, at)).where(
        SUBSCRIBED
    )
    if contact_id is not None:
        select = select.where(contacts.c.id == contact_id)
    return _insert_from(conn, select)


def tagged(conn: Connection, flows: Sequence[tuple[str, str]], at: datetime) -> int:
    """Fans tagged since the cursor (table `fan_tags`)."""
    t = fan_tags.c
    start = cursor(conn, "tagged") or 0
    last = conn.execute(sa.select(sa.func.max(t.id)).where(t.id > start)).scalar()
    if last is None:
        return 0
    added = 0
    for flow, tag in flows:
        select = sa.select(t.contact_id, *_job_cols(flow, "tagged", tag, t.created_at, at)).where(
            t.id > start, t.id <= last, t.tag == tag
        )
        added += _insert_from(conn, select)
    move_cursor(conn, "tagged", last, at)
    return added


def profile_tags(conn: Connection, at: datetime, contact_id: int | None = None) -> int:
    """Tags on profiles alone join `fan_tags` (then `tagged` reads them like any tag): once per
    UTC day (cursor: the day), or for one fan (a moved clock) without moving the cursor."""
    if contact_id is not None:
        return tag_store.adopt_profile_tags(conn, at, contact_id)
    day = at.date().toordinal()
    if (cursor(conn, "profile_tags") or 0) >= day:
        return 0
    added = tag_store.adopt_profile_tags(conn, at)
    move_cursor(conn, "profile_tags", day, at)
    return added


def clicked(conn: Connection, flows: Sequence[tuple[str, int | str]], at: datetime) -> int:
    """Fans whose first human click was recorded since the cursor (`link_clicks`)."""
    k, li = link_clicks.c, links.c
    start = cursor(conn, "on_click") or 0
    last = conn.execute(sa.select(sa.func.max(k.id)).where(k.id > start)).scalar()
    if last is None:
        return 0
    added = 0
    for flow, broadcast in flows:
        select = (
            sa.select(k.contact_id, *_job_cols(flow, "on_click", li.code, k.first_at, at))
            .select_from(link_clicks.join(links, li.id == k.link_id))
            .where(k.id > start, k.id <= last, k.agent_kind == "human", k.contact_id.is_not(None))
        )
        if broadcast != "any":
            select = select.where(li.broadcast_id == int(broadcast))
        added += _insert_from(conn, select)
    move_cursor(conn, "on_click", last, at)
    return added


def no_reply_to_broadcast(
    conn: Connection, flow: str, broadcast_id: int, after: timedelta, at: datetime
) -> int:
    """Recipients of the broadcast whose text was sent more than `after` ago and who have not
    texted since it was sent."""
    m, r = messages.c, broadcast_recipients.c
    sent = (
        sa.select(m.contact_id, sa.func.min(m.sent_at).label("sent_at"))
        .where(m.broadcast_id == broadcast_id, m.direction == "out", m.sent_at.is_not(None))
        .group_by(m.contact_id)
        .subquery()
    )
    replied = sa.exists().where(
        m.contact_id == sent.c.contact_id, m.direction == "in", m.created_at >= sent.c.sent_at
    )
    select = (
        sa.select(
            sent.c.contact_id, *_job_cols(flow, "no_reply_after", f"b{broadcast_id}", at, at)
        )  # fmt: skip
        .select_from(sent.join(broadcast_recipients, r.contact_id == sent.c.contact_id))
        .where(
            r.broadcast_id == broadcast_id,
            sent.c.sent_at <= at - after,
            ~replied,
            sent.c.sent_at >= at - after - LATE,
        )  # fmt: skip
    )
    return _insert_from(conn, select)


# ---- claiming and finishing --------------------------------------------------------------------


def claim(
    conn: Connection, at: datetime, lease: timedelta, limit: int, contact_id: int | None = None
) -> list[FlowJob]:
    """Due jobs (but those held until later), and running ones whose runner's lease lapsed:
    `-> running` in one UPDATE."""
    ready = sa.or_(
        sa.and_(_j.status == "due", _j.due_at <= at,
                sa.or_(_j.lease_until.is_(None), _j.lease_until <= at)),
        sa.and_(_j.status == "running", _j.lease_until < at),
    )  # fmt: skip
    pick = sa.select(_j.id).where(ready).order_by(_j.due_at).limit(limit)
    if contact_id is not None:
        pick = pick.where(_j.contact_id == contact_id)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = conn.execute(
        flow_jobs.update()
        .where(_j.id.in_(pick.scalar_subquery()), ready)
        .values(status="running", lease_until=at + lease, attempts=_j.attempts + 1)
        .returning(_j.id, _j.contact_id, _j.flow, _j.trigger, _j.occurrence, _j.step, _j.attempts,
                   _j.due_at)
    ).all()  # fmt: skip
    return sorted((FlowJob(*r[:-1], _aware(r.due_at)) for r in rows), key=lambda j: j.id)


def _mine(job: FlowJob) -> Any:
    return sa.and_(_j.id == job.id, _j.status == "running", _j.attempts == job.attempts)


def settle(conn: Connection, job: FlowJob, status: str, reason: str | None, at: datetime) -> bool:
    """`running -> done | skipped` for the attempt this runner claimed; False: taken over."""
    return bool(
        conn.execute(
            flow_jobs.update()
            .where(_mine(job))
            .values(status=status, reason=reason, done_at=at, lease_until=None)
        ).rowcount
    )


def hold(conn: Connection, job: FlowJob, until: datetime) -> bool:
    """`running -> due` again, not claimed before `until` (`lease_until` of a `due` job: a person
    owns the fan's thread; reason says so while it waits); the attempt is given back. False:
    taken over."""
    return bool(
        conn.execute(
            flow_jobs.update()
            .where(_mine(job))
            .values(status="due", reason="person_in_thread", lease_until=until,
                    attempts=_j.attempts - 1)
        ).rowcount
    )  # fmt: skip


@dataclass(frozen=True)
class ShortLinks:
    """Where a timed text's short links point (`fanline.links`), when they are tracked."""

    base: str
    utm: dict[str, str]


def finish(
    conn: Connection, job: FlowJob, rec: TurnRecord, at: datetime, short: ShortLinks | None = None
) -> list[int] | None:
    """The timed turn, written with its job's `done` (None: the job was taken over, nothing
    written). The texts are `messages.kind = 'timed'`, for the outbox's guarded claim."""
    if not settle(conn, job, "done", None, at):
        return None
    erased = conn.execute(
        sa.select(contacts.c.erased_at).where(contacts.c.id == rec.contact_id)
    ).scalar()
    if erased is not None:
        return []
    if rec.events:
        conn.execute(
            events.insert(),
            [{"contact_id": rec.contact_id, "message_id": None, "type": kind, "data": data,
              "at": at, **flow_columns(data)} for kind, data in rec.events],
        )  # fmt: skip
    values: dict[str, Any] = {"updated_at": at}
    if rec.dialogue is not None:
        values["dialogue"] = rec.dialogue
    conn.execute(
        conversations.update().where(conversations.c.id == rec.conversation_id).values(**values)
    )
    if rec.profile_updates:
        tag_store.update_profile(conn, rec.contact_id, rec.profile_updates, at)
    for source in dict.fromkeys(s for _, s in rec.tags):  # a timed flow's `tag:` steps
        tag_store.add_tags(
            conn, rec.contact_id, [t for t, s in rec.tags if s == source], source, at
        )
    if not rec.replies:
        return []
    rows = [
        {"contact_id": rec.contact_id, "direction": "out", "to_number": r.to,
         "from_number": r.sender, "body": r.body, "media_urls": list(r.media_urls),
         "kind": "timed", "status": "queued", "created_at": at}
        for r in rec.replies
    ]  # fmt: skip
    ids = list(conn.execute(messages.insert().returning(messages.c.id), rows).scalars())
    if short is not None:  # each URL a short link of this fan's, tied to the text that carries it
        for oid, row in zip(ids, rows, strict=True):
            body = link_store.shorten_text(conn, row["body"], base=short.base, utm=short.utm,
                                           contact_id=rec.contact_id, flow=job.flow,
                                           message_id=oid)  # fmt: skip
            if body != row["body"]:
                conn.execute(messages.update().where(messages.c.id == oid).values(body=body))
    return ids


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def month_days(day: date) -> list[str]:
    """MM-DD of the day and its neighbours (a local birthday may be another UTC day); a Feb 29
    birthday counts on Feb 28 in other years."""
    days = [day + timedelta(days=d) for d in (-1, 0, 1)]
    keys = [d.strftime("%m-%d") for d in days]
    if "02-28" in keys:
        keys.append("02-29")
    return keys


def waits(conn: Connection, upto: datetime, at: datetime) -> int:
    """`wait` steps reached since the cursor (the turns' `wait` events): a job each, due the
    delay after the turn (occurrence: the step and the event, so never resumed twice)."""
    e = events.c
    start = cursor(conn, "wait") or 0
    last = conn.execute(sa.select(sa.func.max(e.id)).where(e.id > start, e.at <= upto)).scalar()
    if last is None:
        return 0
    found = conn.execute(
        sa.select(e.id, e.contact_id, e.at, e.data).where(
            e.id > start, e.id <= last, e.type == "wait", e.contact_id.is_not(None)
        )
    ).all()
    added = 0
    for r in found:
        data = r.data or {}
        row = {"contact_id": r.contact_id, "occurrence": f"{data.get('step')}@{r.id}",
               "step": data.get("step"),
               "due_at": _aware(r.at) + timedelta(seconds=float(data.get("delay_s") or 0))}  # fmt: skip
        added += insert_jobs(conn, str(data.get("flow")), "wait", [row], at)
    move_cursor(conn, "wait", last, at)
    return added


def no_reply_to_flow(
    conn: Connection, flow: str, started: str, after: timedelta, at: datetime
) -> int:
    """Fans for whom flow `started` began more than `after` ago and who have not texted since
    (its `flow_started` events, read once through a cursor per timed flow)."""
    e, m = events.c, messages.c
    name, upto = f"no_reply:{flow}", at - after
    start = cursor(conn, name) or 0
    last = conn.execute(sa.select(sa.func.max(e.id)).where(e.id > start, e.at <= upto)).scalar()
    if last is None:
        return 0
    begun = [
        r
        for r in conn.execute(
            sa.select(e.id, e.contact_id, e.at, e.data).where(
                e.id > start, e.id <= last, e.type == "flow_started", e.contact_id.is_not(None),
                e.at >= at - after - LATE,
            )
        )
        if (r.data or {}).get("flow") == started
    ]  # fmt: skip
    rows = []
    for r in begun:
        replied = conn.execute(
            sa.select(m.id)
            .where(m.contact_id == r.contact_id, m.direction == "in", m.created_at > r.at)
            .limit(1)
        ).first()
        if replied is None:
            rows.append({"contact_id": r.contact_id, "occurrence": f"e{r.id}", "due_at": at})
    added = insert_jobs(conn, flow, "no_reply_after", rows, at)
    move_cursor(conn, name, last, at)
    return added
