"""The agents' functions over topics, one transaction each (like `bot.inbox.queue`).

Off the inbound path, beside the human queue: list topics, read one, move texts that do not
belong (or split them off into a new topic), merge two topics, rename one, and reply to a topic:
one answer that reaches every waiting fan through the outbox, exactly once per fan, in their
waking hours; it answers that topic's texts only, and a thread goes back to the bot once none
of the fan's questions waits any more (docs/architecture.md, "Reply to a topic"). The API,
the CLI and the pages call these; waking the outbox sender after commit is theirs to do.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.audience.broadcast_model import Placeholder, check_template, render
from bot.audience.quiet_hours import DEFAULT_ZONE, QuietHours, zone_for_fan
from bot.errors import BadRequest, ConfigError, Conflict, NotFound, StorageError
from bot.inbox.auth import Agent, now, utc
from bot.inbox.queue import MAX_BODY, agent_text, fan_name
from bot.linkish import shown
from bot.sms import count_segments
from bot.storage import Database
from bot.storage import topic_store as sql
from bot.storage.db import Connection
from bot.topics.grouping import centroid, join
from bot.topics.vectors import from_bytes, to_bytes

if TYPE_CHECKING:
    from bot.topics.sweep import SweepResult, TopicSweep

log = logging.getLogger(__name__)
STATUSES = ("open", "answered", "merged")
ORDERS = ("size", "wait")
CHUNK = 200  # fans per transaction of a reply
CHUNK_TRIES = 3
MAX_LABEL = 120
MAX_AUTO_MINUTES = 7 * 24 * 60
TEXTS_SHOWN = 500
WAKING_HOURS = QuietHours()  # 08:00-21:00 in the fan's zone, as broadcasts


@dataclass(frozen=True, slots=True)
class TopicSummary:
    id: int
    status: str
    label: str
    size: int  # texts: waiting ones for an open topic, all of them for the others
    fans: int
    examples: tuple[str, ...]  # up to 3 texts, nearest the topic's centre first
    guesses: tuple[tuple[str, float], ...]  # the classifier's, averaged over the texts' parses
    oldest_at: datetime | None
    waiting_s: float
    broadcast_id: int | None
    auto_until: datetime | None
    label_pinned: bool = False
    merged_into: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "label": self.label, "size": self.size,
            "fans": self.fans, "examples": list(self.examples),
            "guesses": [list(g) for g in self.guesses],
            "oldest_at": _iso(self.oldest_at), "waiting_s": round(self.waiting_s),
            "broadcast_id": self.broadcast_id, "auto_until": _iso(self.auto_until),
            "label_pinned": self.label_pinned, "merged_into": self.merged_into,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class TopicText:
    message_id: int
    contact_id: int
    conversation_id: int | None
    name: str
    body: str
    at: datetime
    similarity: float | None
    conversation_status: str | None
    assignee_id: int | None
    done_at: datetime | None = None
    intent: str | None = None  # this text's own parse (not its escalation's first text's)
    confidence: float | None = None
    opted_out: bool = False  # the fan unsubscribed: a reply will not reach them

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "contact_id": self.contact_id,
            "conversation_id": self.conversation_id, "name": self.name, "body": self.body,
            "at": self.at.isoformat(),
            "similarity": None if self.similarity is None else round(self.similarity, 3),
            "conversation_status": self.conversation_status, "assignee_id": self.assignee_id,
            "done_at": _iso(self.done_at), "intent": self.intent,
            "confidence": self.confidence, "opted_out": self.opted_out,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class TopicDetail:
    summary: TopicSummary
    texts: tuple[TopicText, ...]
    replies: tuple[dict[str, Any], ...]  # {id, agent_id, body, fans, created_at}

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.summary.to_json(), "texts": [t.to_json() for t in self.texts],
            "replies": [{**r, "created_at": _iso(r["created_at"])} for r in self.replies],
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReplyResult:
    reply_id: int
    fans: int  # outbox rows written, by this call and any earlier try with the same key
    skipped: tuple[dict[str, Any], ...] = ()  # {contact_id, conversation_id, reason}
    auto_until: datetime | None = None
    outbox_ids: tuple[int, ...] = field(default=(), compare=False)  # written by this call

    def to_json(self) -> dict[str, Any]:
        return {"reply_id": self.reply_id, "fans": self.fans, "skipped": list(self.skipped),
                "auto_until": _iso(self.auto_until)}  # fmt: skip


# ---- reading ---------------------------------------------------------------------------------


async def list_topics(
    db: Database, *, status: str = "open", order: str = "size", limit: int = 100
) -> list[TopicSummary]:
    """Topics by fans waiting (`size`) or by the longest wait (`wait`)."""
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if order not in ORDERS:
        raise BadRequest(f"order must be one of {', '.join(ORDERS)}")
    return await db.run(_list, status, order, max(1, min(int(limit), 500)), None)


def _list(
    conn: Connection, status: str, order: str, limit: int, ids: Sequence[int] | None
) -> list[TopicSummary]:
    at = now()
    rows = sql.summaries(conn, status=status, order=order, limit=limit, topic_ids=ids)
    by_waiting: dict[bool, list[int]] = defaultdict(list)
    for r in rows:
        by_waiting[r["status"] == "open"].append(r["id"])
    examples: dict[int, list[str]] = {}
    guesses: dict[int, list[Any]] = {}
    for waiting, topic_ids in by_waiting.items():
        examples.update(sql.examples(conn, topic_ids, 12, waiting))  # 3 distinct among them
        guesses.update(sql.guesses(conn, topic_ids, waiting))
    return [_summary(r, examples.get(r["id"], []), guesses.get(r["id"], []), at) for r in rows]


def _summary(
    r: dict[str, Any], examples: list[str], guesses: list[Any], at: datetime
) -> TopicSummary:
    oldest = utc(r["oldest_at"]) if r["oldest_at"] else None
    waiting = max(0.0, (at - oldest).total_seconds()) if oldest and r["status"] == "open" else 0.0
    return TopicSummary(
        id=r["id"], status=r["status"], label=r["label"], size=int(r["texts"] or 0),
        fans=int(r["fans"] or 0), examples=distinct(examples, 3),
        guesses=aggregate_guesses(guesses), oldest_at=oldest, waiting_s=waiting,
        broadcast_id=r["broadcast_id"],
        auto_until=utc(r["auto_until"]) if r["auto_until"] else None,
        label_pinned=bool(r["label_pinned"]), merged_into=r["merged_into"],
    )  # fmt: skip


def distinct(texts: list[str], n: int) -> tuple[str, ...]:
    """The first `n` texts that differ by more than case, spaces and punctuation (the texts
    nearest a topic's centre are often the same words: "is denver on?" and "is denver on")."""
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(" ".join(re.findall(r"\w+", text.lower())), text)
    return tuple(seen.values())[:n]


def aggregate_guesses(per_text: list[Any], top: int = 3) -> tuple[tuple[str, float], ...]:
    """The mean confidence of each intent over the texts' own parses (absent counts as 0)."""
    if not per_text:
        return ()
    total: dict[str, float] = defaultdict(float)
    for guesses in per_text:
        for intent, confidence in guesses or ():
            if intent is not None:
                total[str(intent)] += float(confidence or 0.0)
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return tuple((intent, round(s / len(per_text), 4)) for intent, s in ranked)


async def topic_counts(db: Database) -> dict[str, int]:
    """{"open_topics", "waiting_texts" (in open topics), "ungrouped" (not in a topic yet)}."""
    return await db.run(sql.counts)


async def topic(db: Database, topic_id: int) -> TopicDetail:
    return await db.run(_topic, topic_id)


def _topic(conn: Connection, topic_id: int) -> TopicDetail:
    row = sql.topic_row(conn, topic_id)
    if row is None:
        raise NotFound("no such topic")
    summary = _list(conn, row["status"], "size", 1, [topic_id])[0]
    rows = sql.topic_texts_detail(conn, topic_id, TEXTS_SHOWN)
    parses = sql.text_parses(conn, [t["message_id"] for t in rows])
    texts = tuple(
        TopicText(
            message_id=t["message_id"],
            contact_id=t["contact_id"],
            conversation_id=t["conversation_id"],
            name=fan_name(t["profile"], t["contact_id"]),
            body=t["body"] or "",
            at=utc(t["created_at"]),
            similarity=t["similarity"],
            conversation_status=t["conversation_status"],
            assignee_id=t["assignee_id"],
            done_at=utc(t["done_at"]) if t["done_at"] else None,
            intent=parses.get(t["message_id"], {}).get("intent"),
            confidence=parses.get(t["message_id"], {}).get("confidence"),
            opted_out=t["subscription"] == "unsubscribed",
        )  # fmt: skip
        for t in rows
    )
    replies = tuple(
        {
            "id": r["id"],
            "agent_id": r["agent_id"],
            "body": r["body"],
            "fans": r["fans"],
            "created_at": utc(r["created_at"]),
        }  # fmt: skip
        for r in sql.replies_of(conn, topic_id)
    )
    return TopicDetail(summary, texts, replies)


# ---- reshaping topics ------------------------------------------------------------------------


async def move_texts(
    db: Database, agent: Agent, message_ids: Sequence[int], to_topic: int | None
) -> int:
    """Move texts to another open topic, or split them off into a new one (`to_topic=None`);
    the target's id. Moved texts stay where the agent put them when topics are re-grouped."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        raise BadRequest("no texts to move")
    return await db.run(_move, agent, ids, to_topic)


def _move(conn: Connection, agent: Agent, ids: list[int], to_topic: int | None) -> int:
    rows = sql.text_rows(conn, ids)
    if len(rows) != len(ids):
        raise NotFound("no such text in any topic")
    at = now()
    sources = {r["topic_id"] for r in rows if r["topic_id"] is not None}
    if to_topic is None:
        kinds = sql.topic_rows(conn, sources)
        kind = next((t["vector_kind"] for t in kinds.values()), "")
        to_topic = sql.create_topic(conn, vector_kind=kind, created_at=at)
    else:
        target = sql.topic_row(conn, to_topic, lock=True)
        if target is None:
            raise NotFound("no such topic")
        if target["status"] != "open":
            raise Conflict("that topic is not open any more")
    sql.move_texts(conn, ids, to_topic, placed_by=agent.id)
    _reshaped(conn, {to_topic, *sources} - {None}, at, into=to_topic)
    return to_topic


async def merge(db: Database, agent: Agent, topic_id: int, into_id: int) -> None:
    """Every text of `topic_id` joins `into_id`; `topic_id` is left `merged` (pointing there)."""
    if topic_id == into_id:
        raise BadRequest("a topic cannot be merged into itself")

    def run(conn: Connection) -> None:
        found = sql.topic_rows(conn, [topic_id, into_id], lock=True)
        if topic_id not in found or into_id not in found:
            raise NotFound("no such topic")
        if found[topic_id]["status"] != "open" or found[into_id]["status"] != "open":
            raise Conflict("only open topics can be merged")
        at = now()
        sql.move_all(conn, topic_id, into_id)
        sql.update_topic(conn, topic_id, status="merged", merged_into=into_id, size=0,
                         auto_reply_id=None, auto_until=None, updated_at=at)  # fmt: skip
        _reshaped(conn, {into_id}, at, into=into_id)

    await db.run(run)


def _reshaped(conn: Connection, topic_ids: set[int], at: datetime, *, into: int) -> None:
    """After texts moved: centroids are the mean of the texts' vectors again, sizes recounted,
    labels made again (unless pinned); a topic left without texts is merged into `into`."""
    for topic_id in sorted(topic_ids):
        vectors = [
            v for v in (from_bytes(b) for b in sql.topic_vectors(conn, topic_id)) if v is not None
        ]
        size = sql.count_texts(conn, topic_id)
        values: dict[str, Any] = {"size": size, "updated_at": at}
        if vectors and len({v.shape for v in vectors}) == 1:
            values["centroid"] = to_bytes(centroid(np.stack(vectors)))
        if size == 0 and topic_id != into:
            values.update(status="merged", merged_into=into, auto_reply_id=None, auto_until=None)
        sql.update_topic(conn, topic_id, **values)
        row = sql.topic_row(conn, topic_id)
        if row is not None and not row["label_pinned"]:
            sql.update_topic(conn, topic_id, label="")
    target = sql.topic_row(conn, into)
    if target is not None and target["centroid"] is not None:  # similarities to the new centre
        centre = from_bytes(target["centroid"])
        for r in sql.text_rows_of(conn, into):
            v = from_bytes(r["vector"])
            if v is not None and centre is not None and v.shape == centre.shape:
                sim = float(join(v[None, :], centre[None, :], -2.0)[1][0])
                sql.set_similarity(conn, r["message_id"], sim)


async def rename(db: Database, agent: Agent, topic_id: int, label: str) -> None:
    """Name a topic; the name stays (the sweep no longer relabels it)."""
    label = " ".join((label or "").split())
    if not label:
        raise BadRequest("the label is empty")
    if len(label) > MAX_LABEL:
        raise BadRequest(f"the label is longer than {MAX_LABEL} characters")

    def run(conn: Connection) -> None:
        if sql.topic_row(conn, topic_id) is None:
            raise NotFound("no such topic")
        sql.update_topic(conn, topic_id, label=label, label_pinned=True, updated_at=now())

    await db.run(run)


async def regroup(db: Database, sweep: TopicSweep) -> SweepResult:
    """Group every waiting text of the open topics again, from the stored vectors."""
    return await sweep.regroup()


# ---- replying to a topic ---------------------------------------------------------------------


async def reply_to_topic(
    db: Database,
    agent: Agent,
    topic_id: int,
    body: str,
    *,
    request_key: str | None = None,
    auto_minutes: float | None = None,
    quiet: QuietHours | None = WAKING_HOURS,
    at: datetime | None = None,
) -> ReplyResult:
    """One answer to every fan waiting in the topic, exactly once each (see the module doc).

    `request_key`: a retry with the same key continues the first reply and texts nobody twice.
    `auto_minutes`: for that long, texts that join the topic are answered the same way.
    `quiet`: the waking hours (None: send at any hour). `at`: the clock (tests)."""
    body = agent_text(body)
    parts = _template(body)
    if request_key is not None and not (0 < len(request_key) <= 64):
        raise BadRequest("request_key is 1-64 characters")
    if auto_minutes is not None and not (0 < auto_minutes <= MAX_AUTO_MINUTES):
        raise BadRequest(f"auto-reply minutes must be between 1 and {MAX_AUTO_MINUTES}")
    at = utc(at) if at else now()
    auto_until = at + timedelta(minutes=auto_minutes) if auto_minutes else None
    reply_id, auto_until = await db.run(
        _start_reply, agent, topic_id, body, request_key, auto_until, at
    )
    return await answer_topic(db, topic_id, reply_id, agent.id, parts, auto=False, quiet=quiet,
                              at=at, auto_until=auto_until)  # fmt: skip


def _start_reply(
    conn: Connection, agent: Agent, topic_id: int, body: str, request_key: str | None,
    auto_until: datetime | None, at: datetime,
) -> tuple[int, datetime | None]:  # fmt: skip
    if request_key is not None:
        first = sql.reply_by_key(conn, request_key)
        if first is not None:
            if first["topic_id"] != topic_id:
                raise Conflict("this request_key was used for another topic")
            row = sql.topic_row(conn, topic_id)
            until = row["auto_until"] if row and row["auto_reply_id"] == first["id"] else None
            return int(first["id"]), utc(until) if until else None
    row = sql.topic_row(conn, topic_id, lock=True)
    if row is None:
        raise NotFound("no such topic")
    if row["status"] == "merged":
        raise Conflict(f"this topic was merged into topic {row['merged_into']}")
    reply_id = sql.insert_reply(conn, topic_id=topic_id, agent_id=agent.id, body=body,
                                request_key=request_key, created_at=at)  # fmt: skip
    if reply_id is None:  # the same key won a race a moment ago: that reply is the one
        first = sql.reply_by_key(conn, request_key or "")
        assert first is not None
        return int(first["id"]), None
    if auto_until is not None:
        sql.update_topic(conn, topic_id, auto_reply_id=reply_id, auto_until=auto_until,
                         status="open", updated_at=at)  # fmt: skip
    return int(reply_id), auto_until


async def answer_topic(
    db: Database, topic_id: int, reply_id: int, agent_id: int, parts: tuple[Any, ...], *,
    auto: bool, quiet: QuietHours | None, at: datetime, auto_until: datetime | None = None,
    arrived_by: datetime | None = None,
) -> ReplyResult:  # fmt: skip
    """The reply's chunks, each one transaction, until no waiting fan is left (the sweep's
    auto-reply uses it too: `auto=True`, only texts that `arrived_by` its end)."""
    after, written, skipped = 0, [], []
    while True:
        chunk = await with_retry(db, _answer_chunk, topic_id, reply_id, agent_id, parts, auto,
                                  quiet, at, after, arrived_by)  # fmt: skip
        written += chunk.outbox_ids
        skipped += chunk.skipped
        if chunk.last_contact is None:
            break
        after = chunk.last_contact
    fans = await db.run(_finish_reply, topic_id, reply_id, at)
    return ReplyResult(reply_id, fans, tuple(skipped), auto_until, tuple(written))


async def with_retry(db: Database, fn: Any, *args: Any) -> Any:
    """A chunk (of a topic reply, or of a correction of bot answers) again if the database
    rolled it back (PostgreSQL breaking a lock cycle: a claim locks a thread's conversation
    before its escalation, a chunk the other way round): it rolled back whole, so it is safe."""
    for attempt in range(CHUNK_TRIES):
        try:
            return await db.run(fn, *args)
        except StorageError:
            if attempt == CHUNK_TRIES - 1:
                raise
            log.warning("a chunk was rolled back (%d of %d); trying again", attempt + 1,
                        CHUNK_TRIES)  # fmt: skip
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Chunk:
    outbox_ids: list[int]
    skipped: list[dict[str, Any]]
    last_contact: int | None  # None: no fan left after this chunk


def _answer_chunk(
    conn: Connection, topic_id: int, reply_id: int, agent_id: int, parts: tuple[Any, ...],
    auto: bool, quiet: QuietHours | None, at: datetime, after: int,
    arrived_by: datetime | None,
) -> Chunk:  # fmt: skip
    fans = sql.waiting_fans(conn, topic_id, after, CHUNK, arrived_by)
    if not fans:
        return Chunk([], [], None)
    last = fans[-1]["contact_id"] if len(fans) == CHUNK else None
    by_escalation = {f["escalation_id"]: f for f in fans}
    # escalations first, then conversations: the order a turn and the escalation timer lock in
    unresolved = sql.lock_escalations(conn, list(by_escalation))
    threads = sql.lock_conversations(conn, [r["conversation_id"] for r in unresolved])
    skipped, mine = [], []
    for r in unresolved:
        conv = threads.get(r["conversation_id"])
        if conv is not None and conv["assignee_id"] not in (None, agent_id):
            skipped.append({"contact_id": r["contact_id"], "conversation_id": conv["id"],
                            "reason": "claimed"})  # fmt: skip
            continue
        mine.append(r)
    # the fans this reply answers: those whose texts in this topic it marks done (exactly once)
    answered = sql.claim_texts(conn, topic_id, [r["id"] for r in mine], at, arrived_by)
    won = [r for r in mine if r["id"] in answered]
    # a fan's other questions (in other topics, or not grouped yet) keep the escalation open
    # and the thread waiting; only a fan with nothing else waiting goes back to the bot
    waiting = sql.still_waiting(conn, [r["id"] for r in won])
    finished = [r for r in won if r["id"] not in waiting]
    sql.resolve_escalations(conn, [r["id"] for r in finished], agent_id, at)
    contacts = sql.fans(conn, [r["contact_id"] for r in won])
    numbers = sql.our_numbers(conn, [by_escalation[r["id"]]["message_id"] for r in won])
    outbox, reply_fans, events = [], [], []
    sent_to: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for r in won:
        fan = contacts[r["contact_id"]]
        if fan["phone"] is None or fan["erased_at"] is not None:
            skipped.append({"contact_id": fan["id"], "conversation_id": r["conversation_id"],
                            "reason": "erased"})  # fmt: skip
            continue
        if fan["subscription"] == "unsubscribed":
            skipped.append({"contact_id": fan["id"], "conversation_id": r["conversation_id"],
                            "reason": "opted_out"})  # fmt: skip
            continue
        text = by_escalation[r["id"]]["message_id"]
        outbox.append(outbox_row(fan, parts, numbers.get(text), text, agent_id, quiet, at))
        sent_to.append((r, fan))
    ids = sql.insert_outbox(conn, outbox)
    written: dict[int, int] = {}  # escalation -> the outbox row
    for (r, fan), message_id in zip(sent_to, ids, strict=True):
        written[r["id"]] = message_id
        reply_fans.append({"reply_id": reply_id, "contact_id": fan["id"], "message_id": message_id,
                           "auto": auto, "created_at": at})  # fmt: skip
    for r in won:
        message_id = written.get(r["id"])
        events.append({"contact_id": r["contact_id"], "message_id": message_id,
                       "type": "agent_replied", "at": at,
                       "data": {"agent_id": agent_id, "message_id": message_id,
                                "topic_id": topic_id, "topic_reply_id": reply_id,
                                "auto": auto, "resolved": r["id"] not in waiting}})  # fmt: skip
    sql.insert_reply_fans(conn, reply_fans)
    sql.add_events(conn, events)
    sql.add_reply_fans(conn, reply_id, len(reply_fans))
    sql.back_to_bot(conn, [r["conversation_id"] for r in finished], at)
    return Chunk(ids, skipped, last)


def outbox_row(
    fan: dict[str, Any], parts: tuple[Any, ...], ours: str | None, reply_to: int, agent_id: int,
    quiet: QuietHours | None, at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """One agent text to one fan (a topic reply, a bot answer's correction): personalised, in
    the fan's waking hours, kind `agent` so the sender's guarded claim refuses it after a STOP."""
    profile = dict(fan["profile"] or {})
    text = personalised(parts, profile)[:MAX_BODY]
    seg = count_segments(text)
    not_before = None
    if quiet is not None:
        not_before = quiet.opens_at(zone_for_fan(profile, fan["phone"], DEFAULT_ZONE), at)
    return {"contact_id": fan["id"], "direction": "out", "to_number": fan["phone"],
            "from_number": ours, "body": text, "media_urls": [], "kind": "agent",
            "status": "queued", "agent_id": agent_id, "private": False, "reply_to": reply_to,
            "segments": seg.count, "encoding": seg.encoding, "not_before": not_before,
            "created_at": at}  # fmt: skip


def _finish_reply(conn: Connection, topic_id: int, reply_id: int, at: datetime) -> int:
    sql.close_answered(conn, [topic_id], at)
    return sql.reply_fan_count(conn, reply_id)


async def set_auto_reply(db: Database, agent: Agent, topic_id: int, until: datetime | None) -> None:
    """Answer texts that join the topic with its latest reply until `until` (None: stop)."""
    if until is not None and utc(until) <= now():
        raise BadRequest("auto-reply until a time in the future")
    if until is not None and utc(until) > now() + timedelta(minutes=MAX_AUTO_MINUTES):
        raise BadRequest("auto-reply for at most a week")

    def run(conn: Connection) -> None:
        row = sql.topic_row(conn, topic_id, lock=True)
        if row is None:
            raise NotFound("no such topic")
        if until is None:
            sql.update_topic(conn, topic_id, auto_reply_id=None, auto_until=None, updated_at=now())
            return
        if row["status"] == "merged":
            raise Conflict(f"this topic was merged into topic {row['merged_into']}")
        replies = sql.replies_of(conn, topic_id)
        if not replies:
            raise Conflict("reply to the topic first: the auto-reply sends that answer")
        sql.update_topic(conn, topic_id, auto_reply_id=replies[-1]["id"], auto_until=utc(until),
                         status="open", updated_at=now())  # fmt: skip

    await db.run(run)


# ---- checks ----------------------------------------------------------------------------------


def _template(body: str) -> tuple[Any, ...]:
    try:  # the broadcast renderer's own check: the same text is refused the same way everywhere
        return check_template(body, echo=False)
    except ConfigError as exc:
        raise BadRequest(exc.message) from None


def template(body: str) -> tuple[Any, ...]:
    """The parsed reply text (the sweep's auto-reply renders a stored reply with it)."""
    return _template(body)


def personalised(parts: tuple[Any, ...], profile: dict[str, Any]) -> str:
    """The reply for one fan. A placeholder the fan has no value for and no `|fallback` leaves
    no gap: "Hi {first_name}! Doors at 7" reads "Hi! Doors at 7", never "Hi ! Doors at 7"."""
    text = render(parts, profile)
    bare = [p for p in parts if isinstance(p, Placeholder) and not p.fallback]
    if any(shown(p.name, profile.get(p.name)) in (None, "") for p in bare):  # a link: missing
        text = re.sub(r"[ \t]+([!?.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
        text = re.sub(r"[,;:]+([!?.])", r"\1", text).strip()  # "at 7, ." -> "at 7."
    return text


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


__all__ = [
    "ReplyResult", "TopicDetail", "TopicSummary", "TopicText", "list_topics", "merge",
    "move_texts", "regroup", "rename", "reply_to_topic", "set_auto_reply", "topic",
    "topic_counts",
]  # fmt: skip
