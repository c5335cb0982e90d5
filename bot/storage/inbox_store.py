"""The inbox's SQL: statements over agents, sessions, conversations, escalations and messages.

Off the inbound path, under the inbox's service layer (`bot.inbox.queue`, `threads`, `auth`):
those modules hold the rules and compose these functions into units of work, one transaction
each through `Database.run`. Everything here takes the open `Connection` and returns plain
values and dicts; the caller passes the clock in (`at`), so no rule hides in a statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.domain import IN_QUEUE
from bot.storage.inbox_tables import agent_sessions, agents, login_attempts
from bot.storage.tables import (
    consent_events,
    contacts,
    conversations,
    escalations,
    events,
    messages,
)

HUMAN = IN_QUEUE  # the statuses the team's queue lists (and agents may act on)
Row = dict[str, Any]


def _dict(row: Any) -> Row | None:
    return dict(row._mapping) if row is not None else None


# ---- the queue -------------------------------------------------------------------------------


def queue_page(
    conn: Connection, view: str, agent_id: int, limit: int, offset: int, at: datetime,
    priority_rank: dict[str, int],
) -> tuple[dict[str, int], list[Row]]:  # fmt: skip
    """(count per view, one page of threads in order): priority, then the longest wait."""
    c, e = conversations, escalations
    snoozing = sa.and_(c.c.status == "snoozed", c.c.snoozed_until > at)
    awake = sa.not_(snoozing)
    missed = c.c.status == "missed"
    # a fan who opted out cannot be texted: nothing in the unclaimed views is work for anyone
    # (*All* still lists them, marked; a thread someone claimed stays in their *Mine*)
    reachable = contacts.c.subscription != "unsubscribed"
    conditions = {
        "unassigned": sa.and_(awake, c.c.assignee_id.is_(None), sa.not_(missed), reachable),
        "mine": sa.and_(awake, c.c.assignee_id == agent_id),
        "all": sa.true(),
        "snoozed": snoozing,
        "missed": sa.and_(missed, c.c.assignee_id.is_(None), reachable),
    }
    in_queue = c.c.status.in_(HUMAN)
    counts = conn.execute(
        sa.select(*[sa.func.count().filter(cond).label(name) for name, cond in conditions.items()])
        .select_from(c)
        .join(contacts, contacts.c.id == c.c.contact_id)
        .where(in_queue)
    ).one()
    # the newest unresolved escalation of each thread (normally its only one)
    current = (
        sa.select(e.c.conversation_id, sa.func.max(e.c.id).label("id"))
        .where(e.c.resolved_at.is_(None))
        .group_by(e.c.conversation_id)
        .subquery()
    )
    rank = sa.case(
        *[(e.c.priority == p, r) for p, r in priority_rank.items()], else_=len(priority_rank)
    )
    # sort narrow rows (ids only), then load the page's details: sorting wide rows costs more
    page = conn.execute(
        sa.select(c.c.id.label("cid"), e.c.id.label("eid"))
        .select_from(c)
        .join(contacts, contacts.c.id == c.c.contact_id)
        .outerjoin(current, current.c.conversation_id == c.c.id)
        .outerjoin(e, e.c.id == current.c.id)
        .where(in_queue, conditions[view])
        .order_by(rank, sa.func.coalesce(e.c.created_at, c.c.updated_at), c.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return dict(counts._mapping), _queue_details(conn, page)


def _queue_details(conn: Connection, page: list[Any]) -> list[Row]:
    if not page:
        return []
    c, e = conversations, escalations
    rows = conn.execute(
        sa.select(
            c.c.id, c.c.contact_id, c.c.status, c.c.snoozed_until, c.c.assignee_id,
            c.c.updated_at, contacts.c.profile, contacts.c.subscription, e.c.reason,
            e.c.priority, e.c.guesses,
            e.c.created_at, e.c.first_response_at, e.c.due_at, e.c.missed_at,
            agents.c.display_name,
        )
        .select_from(c)
        .join(contacts, contacts.c.id == c.c.contact_id)
        .outerjoin(e, e.c.id.in_([p.eid for p in page if p.eid is not None]) & (e.c.conversation_id == c.c.id))
        .outerjoin(agents, agents.c.id == c.c.assignee_id)
        .where(c.c.id.in_([p.cid for p in page]))
    ).all()  # fmt: skip
    order = {p.cid: i for i, p in enumerate(page)}
    return [dict(r._mapping) for r in sorted(rows, key=lambda r: order[r.id])]


def last_messages(conn: Connection, contact_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """Per fan: the text that needs answering (the preview: their newest text still waiting for
    a person, else their newest text) and whether they spoke last (awaiting a reply)."""
    if not contact_ids:
        return {}
    m = messages.c
    mine = sa.and_(m.contact_id.in_(contact_ids), m.private.is_(False))
    newest = sa.select(sa.func.max(m.id)).where(mine).group_by(m.contact_id)
    newest_in = sa.select(sa.func.max(m.id)).where(mine, m.direction == "in").group_by(m.contact_id)
    rows = conn.execute(
        sa.select(m.id, m.contact_id, m.direction, m.body).where(
            sa.or_(m.id.in_(newest), m.id.in_(newest_in))
        )
    ).all()
    out: dict[int, tuple[str, bool]] = {}
    for r in sorted(rows, key=lambda r: r.id):  # the later row per fan is the newest message
        preview = (r.body or "[media]") if r.direction == "in" else out.get(r.contact_id, ("",))[0]
        out[r.contact_id] = (preview, r.direction == "in")
    # a "👍" or "ok" the bot answered after the question must not hide the question
    for contact_id, body in waiting_texts(conn, contact_ids).items():
        out[contact_id] = (body or "[media]", out.get(contact_id, ("", False))[1])
    return out


def waiting_texts(conn: Connection, contact_ids: list[int]) -> dict[int, str | None]:
    """Per fan, the body of their newest text that reached a person and still waits: it carries
    an unresolved escalation and no topic reply has answered it."""
    from bot.storage.topic_tables import topic_texts

    m, e, tt = messages.c, escalations.c, topic_texts.c
    waiting = (
        sa.select(sa.func.max(m.id))
        .join(escalations, e.id == m.escalation_id)
        .outerjoin(topic_texts, tt.message_id == m.id)
        .where(m.contact_id.in_(contact_ids), m.direction == "in", e.resolved_at.is_(None),
               tt.done_at.is_(None))
        .group_by(m.contact_id)
    )  # fmt: skip
    return {
        r.contact_id: r.body
        for r in conn.execute(sa.select(m.contact_id, m.body).where(m.id.in_(waiting)))
    }


# ---- conversations and their escalations -----------------------------------------------------


def conversation(conn: Connection, conversation_id: int) -> Row | None:
    return _dict(
        conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id)).first()
    )


def conversation_of_contact(conn: Connection, contact_id: int) -> int | None:
    return conn.execute(
        sa.select(conversations.c.id).where(conversations.c.contact_id == contact_id)
    ).scalar()


def conversation_of_message(conn: Connection, message_id: int) -> int | None:
    """The conversation of a fan's (inbound) text."""
    m, c = messages.c, conversations.c
    return conn.execute(
        sa.select(c.id).join(messages, m.contact_id == c.contact_id)
        .where(m.id == message_id, m.direction == "in")
    ).scalar()  # fmt: skip


def lock_thread(conn: Connection, conversation_id: int) -> None:
    """Lock the thread's unresolved escalation, then the conversation (PostgreSQL), before an
    agent's change: the order turns, the escalation timer and topic replies lock them in, so
    two of them never wait on each other (a deadlock)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: one writer, nothing to order
    e, c = escalations.c, conversations.c
    conn.execute(
        sa.select(e.id).where(e.conversation_id == conversation_id, e.resolved_at.is_(None))
        .order_by(e.id).with_for_update()
    )  # fmt: skip
    conn.execute(sa.select(c.id).where(c.id == conversation_id).with_for_update())


def take_if_free(conn: Connection, conversation_id: int, agent_id: int, at: datetime) -> bool:
    """Assign a queued thread nobody holds; it is `open` from then on (the bot goes quiet), or
    stays `snoozed`. One conditional UPDATE: under any concurrency exactly one caller wins."""
    c = conversations.c
    won = conn.execute(
        conversations.update()
        .where(c.id == conversation_id, c.assignee_id.is_(None), c.status.in_(HUMAN))
        .values(
            assignee_id=agent_id, updated_at=at,
            status=sa.case((c.status == "snoozed", "snoozed"), else_="open"),
        )
    ).rowcount  # fmt: skip
    return won == 1


def update_conversation(conn: Connection, conversation_id: int, **values: Any) -> None:
    conn.execute(
        conversations.update().where(conversations.c.id == conversation_id).values(**values)
    )


def assign_escalation(conn: Connection, conversation_id: int, agent_id: int | None) -> None:
    conn.execute(
        escalations.update()
        .where(
            escalations.c.conversation_id == conversation_id, escalations.c.resolved_at.is_(None)
        )
        .values(assignee_id=agent_id)
    )


def mark_first_response(conn: Connection, conversation_id: int, at: datetime) -> None:
    conn.execute(
        escalations.update()
        .where(
            escalations.c.conversation_id == conversation_id,
            escalations.c.resolved_at.is_(None),
            escalations.c.first_response_at.is_(None),
        )
        .values(first_response_at=at)
    )


def resolve_escalations(
    conn: Connection, conversation_id: int, agent_id: int, at: datetime
) -> None:
    """Stop the clock on the open escalations; whoever resolves is the assignee if none was."""
    conn.execute(
        escalations.update()
        .where(
            escalations.c.conversation_id == conversation_id, escalations.c.resolved_at.is_(None)
        )
        .values(resolved_at=at, assignee_id=sa.func.coalesce(escalations.c.assignee_id, agent_id))
    )


def latest_escalation(conn: Connection, conversation_id: int) -> Row | None:
    return _dict(
        conn.execute(
            sa.select(escalations)
            .where(escalations.c.conversation_id == conversation_id)
            .order_by(escalations.c.id.desc())
            .limit(1)
        ).first()
    )


def add_event(
    conn: Connection, contact_id: int, kind: str, data: dict[str, Any], at: datetime,
    message_id: int | None = None,
) -> None:  # fmt: skip
    conn.execute(
        events.insert().values(
            contact_id=contact_id, message_id=message_id, type=kind, data=data, at=at
        )
    )


# ---- fans and their messages ----------------------------------------------------------------


def contact(conn: Connection, contact_id: int) -> Row:
    return dict(conn.execute(sa.select(contacts).where(contacts.c.id == contact_id)).one()._mapping)


def set_profile(conn: Connection, contact_id: int, profile: dict[str, Any]) -> None:
    conn.execute(contacts.update().where(contacts.c.id == contact_id).values(profile=profile))


def last_inbound_number(conn: Connection, contact_id: int) -> str | None:
    """Our number the fan texted most recently: replies go out from it."""
    return conn.execute(
        sa.select(messages.c.to_number)
        .where(messages.c.contact_id == contact_id, messages.c.direction == "in")
        .order_by(messages.c.id.desc())
        .limit(1)
    ).scalar()


def insert_message(conn: Connection, **values: Any) -> int:
    return int(
        conn.execute(messages.insert().values(**values).returning(messages.c.id)).scalar_one()
    )


def consent_history(conn: Connection, contact_id: int) -> list[Row]:
    return [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(consent_events.c.action, consent_events.c.method, consent_events.c.at)
            .where(consent_events.c.contact_id == contact_id)
            .order_by(consent_events.c.id)
        )
    ]


def thread_head(conn: Connection, conversation_id: int) -> Row | None:
    """The conversation with its assignee's display name."""
    return _dict(
        conn.execute(
            sa.select(conversations, agents.c.display_name)
            .outerjoin(agents, agents.c.id == conversations.c.assignee_id)
            .where(conversations.c.id == conversation_id)
        ).first()
    )


def recent_messages(conn: Connection, contact_id: int, limit: int) -> list[Row]:
    """The fan's newest `limit` messages, oldest first, with the sending agent's name."""
    rows = conn.execute(
        sa.select(messages, agents.c.display_name)
        .outerjoin(agents, agents.c.id == messages.c.agent_id)
        .where(messages.c.contact_id == contact_id)
        .order_by(messages.c.id.desc())
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in reversed(rows)]


def fan_events(
    conn: Connection, contact_id: int, kinds: Iterable[str], since: datetime
) -> list[Row]:
    return [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(events.c.id, events.c.type, events.c.data, events.c.message_id, events.c.at)
            .where(
                events.c.contact_id == contact_id,
                events.c.type.in_(list(kinds)),
                events.c.at >= since,
            )
            .order_by(events.c.id)
        )
    ]


# ---- service timers -------------------------------------------------------------------------


def escalation_backlog(conn: Connection) -> dict[str, int]:
    """Open escalations, and those of them with no human answer yet."""
    e = escalations
    open_now = e.c.resolved_at.is_(None)
    row = conn.execute(
        sa.select(
            sa.func.count().filter(open_now).label("open"),
            sa.func.count().filter(open_now, e.c.first_response_at.is_(None)).label("waiting"),
        )
    ).one()
    return dict(row._mapping)


def answered_escalations(conn: Connection, since: datetime) -> list[Row]:
    """Escalations since a time that carry a duration (answered or resolved)."""
    e = escalations
    return [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(e.c.created_at, e.c.first_response_at, e.c.resolved_at).where(
                e.c.created_at >= since,
                sa.or_(e.c.first_response_at.is_not(None), e.c.resolved_at.is_not(None)),
            )
        )
    ]


def turn_labels_of(conn: Connection, message_ids: Iterable[int]) -> dict[int, Row]:
    """The newest agent label of each of these fan texts (the thread page shows them)."""
    from bot.storage.topic_tables import turn_labels

    ids = list(message_ids)
    if not ids:
        return {}
    t = turn_labels.c
    rows = conn.execute(
        sa.select(t.message_id, t.verdict, t.intent, t.status, t.agent_id)
        .where(t.message_id.in_(ids)).order_by(t.id)
    ).all()  # fmt: skip
    return {r.message_id: dict(r._mapping) for r in rows}  # the newest wins


def reached_the_inbox(conn: Connection, conversation_id: int) -> bool:
    """True once the conversation was ever handed to people (it has an escalation)."""
    q = sa.select(escalations.c.id).where(escalations.c.conversation_id == conversation_id)
    return conn.execute(q.limit(1)).first() is not None


# ---- agents, sessions, login attempts --------------------------------------------------------


def all_agents(conn: Connection) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(sa.select(agents).order_by(agents.c.id))]


def agent_by_username(conn: Connection, username: str) -> Row | None:
    return _dict(conn.execute(sa.select(agents).where(agents.c.username == username)).first())


def agent_is_active(conn: Connection, agent_id: int) -> bool:
    """False for a disabled agent and for an id nobody has."""
    return bool(conn.execute(sa.select(agents.c.active).where(agents.c.id == agent_id)).scalar())


def insert_agent(conn: Connection, row: dict[str, Any]) -> Row:
    return dict(conn.execute(agents.insert().values(row).returning(*agents.c)).one()._mapping)


def update_agent(conn: Connection, username: str, **values: Any) -> Row | None:
    return _dict(
        conn.execute(
            agents.update()
            .where(agents.c.username == username)
            .values(**values)
            .returning(*agents.c)
        ).first()
    )


def last_good_login(conn: Connection, username: str) -> datetime | None:
    return conn.execute(
        sa.select(sa.func.max(login_attempts.c.at)).where(
            login_attempts.c.username == username, login_attempts.c.ok.is_(True)
        )
    ).scalar()


def failed_logins(
    conn: Connection, *, since: datetime, username: str | None = None, ip: str | None = None
) -> tuple[int, datetime | None]:
    """(failures after `since`, the oldest of them) for one username or one client address."""
    column, value = (
        (login_attempts.c.username, username) if ip is None else (login_attempts.c.ip, ip)
    )
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(login_attempts.c.at)).where(
            column == value, login_attempts.c.ok.is_(False), login_attempts.c.at > since
        )
    ).one()
    return int(count), oldest


def record_login(conn: Connection, username: str, ip: str, ok: bool, at: datetime) -> int:
    row = conn.execute(
        login_attempts.insert()
        .values(username=username, ip=ip, ok=ok, at=at)
        .returning(login_attempts.c.id)
    ).one()
    return int(row[0])


def mark_login_ok(conn: Connection, attempt_id: int, at: datetime) -> None:
    conn.execute(
        login_attempts.update().where(login_attempts.c.id == attempt_id).values(ok=True, at=at)
    )


def lock_login(conn: Connection, username: str, ip: str) -> None:
    """Serialise limit checks per username and per address until the transaction ends.
    SQLite's single writer already runs units of work one at a time."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({f"login:u:{username}", f"login:ip:{ip}"}):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def insert_session(
    conn: Connection, token_hash: str, agent_id: int, csrf: str, at: datetime, expires: datetime
) -> None:
    conn.execute(
        agent_sessions.insert().values(
            token_hash=token_hash, agent_id=agent_id, csrf=csrf, created_at=at, expires_at=expires
        )
    )


def session_agent(conn: Connection, token_hash: str, at: datetime) -> Row | None:
    """The active agent (with the session's `csrf`) of a live session, or None."""
    return _dict(
        conn.execute(
            sa.select(agents, agent_sessions.c.csrf)
            .join(agent_sessions, agent_sessions.c.agent_id == agents.c.id)
            .where(
                agent_sessions.c.token_hash == token_hash,
                agent_sessions.c.expires_at > at,
                agents.c.active.is_(True),
            )
        ).first()
    )


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(agent_sessions.delete().where(agent_sessions.c.token_hash == token_hash))


def delete_agent_sessions(conn: Connection, agent_id: int) -> None:
    conn.execute(agent_sessions.delete().where(agent_sessions.c.agent_id == agent_id))
