"""The agents' functions over bot answers: review what the bot answered after a broadcast.

Off the inbound path, beside topics: the answer sweep (`review_sweep.py`) groups broadcast
replies the bot answered by the response it gave and by meaning; here an agent lists the groups
("229 fans got utter_meet_greet for 'will the meet and greet still happen'"), reads one, marks
it right (reviewed, nothing sent), corrects it with one follow-up text to each of its fans
(exactly once per fan: the guards of a topic reply, docs/architecture.md "Bot answers"), teaches
from it (`bot.teach`), or moves texts that do not belong out of it. The API, the CLI and the
pages call these; waking the outbox sender after commit is theirs to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from bot.audience.quiet_hours import QuietHours
from bot.errors import BadRequest, Conflict, Forbidden, NotFound
from bot.inbox.auth import Agent, now, utc
from bot.inbox.queue import agent_text, fan_name
from bot.storage import Database, label_store
from bot.storage import review_store as sql
from bot.storage.db import Connection
from bot.teach import content_writer
from bot.teach.scrub import profile_names, scrub
from bot.topics.grouping import centroid
from bot.topics.service import Chunk, distinct, outbox_row, template, with_retry
from bot.topics.vectors import from_bytes, to_bytes

log = logging.getLogger(__name__)
STATUSES = ("open", "right", "corrected", "taught")
CHUNK = 200  # fans per transaction of a correction
TEXTS_SHOWN = 500
MAX_EXAMPLES = 50  # what teaching takes (bot.teach.service.MAX_EXAMPLES)
WAKING_HOURS = QuietHours()  # 08:00-21:00 in the fan's zone, as broadcasts


@dataclass(frozen=True, slots=True)
class AnswerGroup:
    id: int
    status: str
    label: str
    response: str  # the bot's response(s): "utter_meet_greet"
    intent: str | None
    answer: str  # what the bot texted the group's most central fan
    size: int  # texts
    fans: int
    reviewed: int  # texts marked right, corrected or taught
    corrected: int  # texts whose fan a correction texted
    examples: tuple[str, ...]
    broadcast_id: int | None
    broadcast_name: str | None
    first_at: datetime | None
    reviewed_by: int | None = None
    taught_intent: str | None = None

    def headline(self) -> str:
        """ "229 fans got utter_meet_greet for 'will the meet and greet still happen'"."""
        example = f" for '{self.examples[0]}'" if self.examples else ""
        return f"{self.fans} fan{'s' if self.fans != 1 else ''} got {self.response}{example}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "label": self.label, "response": self.response,
            "intent": self.intent, "answer": self.answer, "size": self.size, "fans": self.fans,
            "reviewed": self.reviewed, "corrected": self.corrected,
            "examples": list(self.examples), "headline": self.headline(),
            "broadcast_id": self.broadcast_id, "broadcast_name": self.broadcast_name,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "reviewed_by": self.reviewed_by, "taught_intent": self.taught_intent,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class AnswerText:
    message_id: int
    contact_id: int
    name: str
    body: str
    at: datetime
    intent: str | None
    confidence: float | None
    similarity: float | None
    reviewed: bool
    corrected: bool
    moved: bool

    def to_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "contact_id": self.contact_id, "name": self.name,
                "body": self.body, "at": self.at.isoformat(), "intent": self.intent,
                "confidence": None if self.confidence is None else round(self.confidence, 3),
                "similarity": None if self.similarity is None else round(self.similarity, 3),
                "reviewed": self.reviewed, "corrected": self.corrected, "moved": self.moved}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: AnswerGroup
    texts: tuple[AnswerText, ...]
    corrections: tuple[dict[str, Any], ...]  # {id, agent_id, body, fans, created_at}

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group.to_json(), "texts": [t.to_json() for t in self.texts],
                "corrections": [{**c, "created_at": c["created_at"].isoformat()}
                                for c in self.corrections]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CorrectionResult:
    correction_id: int
    fans: int  # outbox rows written, by this call and any earlier try with the same key
    skipped: tuple[dict[str, Any], ...] = ()  # {contact_id, reason}
    outbox_ids: tuple[int, ...] = field(default=(), compare=False)  # written by this call

    def to_json(self) -> dict[str, Any]:
        return {"correction_id": self.correction_id, "fans": self.fans,
                "skipped": list(self.skipped)}  # fmt: skip


# ---- reading ---------------------------------------------------------------------------------


async def list_groups(db: Database, *, status: str = "open", limit: int = 100) -> list[AnswerGroup]:
    """Groups of one status (or `all`), most fans first."""
    if status not in (*STATUSES, "all"):
        raise BadRequest(f"status must be one of {', '.join(STATUSES)} or all")
    statuses = STATUSES if status == "all" else (status,)
    return await db.run(_list, statuses, max(1, min(int(limit), 500)), None)


def _list(
    conn: Connection, statuses: Sequence[str], limit: int, ids: Sequence[int] | None
) -> list[AnswerGroup]:
    rows = sql.summaries(conn, statuses=statuses, limit=limit, ids=ids)
    group_ids = [r["id"] for r in rows]
    examples = sql.examples(conn, group_ids, 12)  # 3 distinct among them
    said = sql.answers(conn, group_ids)
    return [
        AnswerGroup(
            id=r["id"],
            status=r["status"],
            label=r["label"],
            response=r["response"],
            intent=r["intent"],
            answer=said.get(r["id"], ""),
            size=int(r["texts"] or 0),
            fans=int(r["fans"] or 0),
            reviewed=int(r["reviewed"] or 0),
            corrected=int(r["corrected"] or 0),
            examples=distinct(examples.get(r["id"], []), 3),
            broadcast_id=r["broadcast_id"],
            broadcast_name=r["broadcast_name"],
            first_at=utc(r["first_at"]) if r["first_at"] else None,
            reviewed_by=r["reviewed_by"],
            taught_intent=r["taught_intent"],
        )  # fmt: skip
        for r in rows
    ]


async def answer_counts(db: Database) -> dict[str, int]:
    """{"open_groups", "texts" (in open groups)}: the inbox's tab badge."""
    return await db.run(sql.counts)


async def group(db: Database, group_id: int) -> GroupDetail:
    return await db.run(_group, group_id)


def _group(conn: Connection, group_id: int) -> GroupDetail:
    if sql.group_row(conn, group_id) is None:
        raise NotFound("no such group of bot answers")
    summary = _list(conn, STATUSES, 1, [group_id])[0]
    texts = tuple(
        AnswerText(
            message_id=t["message_id"],
            contact_id=t["contact_id"],
            name=fan_name(t["profile"], t["contact_id"]),
            body=t["body"] or "",
            at=utc(t["created_at"]),
            intent=t["intent"],
            confidence=t["confidence"],
            similarity=t["similarity"],
            reviewed=t["done_at"] is not None,
            corrected=t["correction_id"] is not None,
            moved=t["placed_by"] is not None,
        )  # fmt: skip
        for t in sql.group_texts(conn, group_id, TEXTS_SHOWN)
    )
    corrections = tuple(
        {
            "id": c["id"],
            "agent_id": c["agent_id"],
            "body": c["body"],
            "fans": c["fans"],
            "created_at": utc(c["created_at"]),
        }  # fmt: skip
        for c in sql.corrections_of(conn, group_id)
    )
    return GroupDetail(summary, texts, corrections)


# ---- reviewing -------------------------------------------------------------------------------


async def mark_right(db: Database, agent: Agent, group_id: int) -> int:
    """The bot answered these texts right: reviewed, nothing to send (texts that join the group
    later are reviewed too). How many texts were marked."""

    def run(conn: Connection) -> int:
        row = sql.group_row(conn, group_id, lock=True)
        if row is None:
            raise NotFound("no such group of bot answers")
        if row["status"] not in ("open", "right"):
            raise Conflict(f"this group was {row['status']} already")
        at = now()
        sql.update_group(conn, group_id, status="right", reviewed_by=agent.id, reviewed_at=at,
                         updated_at=at)  # fmt: skip
        return sql.review(conn, group_id, at)

    return await db.run(run)


async def move_texts(
    db: Database, agent: Agent, message_ids: Sequence[int], to_group: int | None
) -> int:
    """Move texts out of their group: into another open group that got the same answer, or into
    a new group of their own (`to_group=None`); the target's id. Texts a correction texted
    stay where they are (their fans had their follow-up)."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        raise BadRequest("no texts to move")
    return await db.run(_move, agent, ids, to_group)


def _move(conn: Connection, agent: Agent, ids: list[int], to_group: int | None) -> int:
    rows = sql.text_rows(conn, ids)
    if len(rows) != len(ids) or any(r["group_id"] is None for r in rows):
        raise NotFound("no such text in any group")
    if any(r["correction_id"] is not None for r in rows):
        raise Conflict("a correction already texted the fan of one of these texts")
    sources = sorted({r["group_id"] for r in rows})
    current = sql.group_rows(conn, [*sources, *([to_group] if to_group else [])], lock=True)
    responses = {current[s]["response"] for s in sources}
    at = now()
    if to_group is None:
        first = current[sources[0]]
        if len(responses) > 1:
            raise BadRequest("these texts got different answers: split them one group at a time")
        to_group = sql.create_group(
            conn, response=first["response"], intent=first["intent"], created_at=at,
            vector_kind=first["vector_kind"], broadcast_id=first["broadcast_id"],
        )  # fmt: skip
    else:
        target = current.get(to_group)
        if target is None:
            raise NotFound("no such group of bot answers")
        if target["status"] != "open":
            raise Conflict("that group is not open any more")
        if responses != {target["response"]}:
            raise Conflict("that group got another answer from the bot")
    sql.move_texts(conn, ids, to_group, agent.id)
    for group_id in {*sources, to_group}:
        vectors = [v for v in map(from_bytes, sql.group_vectors(conn, group_id)) if v is not None]
        values: dict[str, Any] = {"label": "", "updated_at": at}
        if vectors and len({v.shape for v in vectors}) == 1:
            values["centroid"] = to_bytes(centroid(np.stack(vectors)))
        sql.update_group(conn, group_id, **values)
    sql.refresh_sizes(conn, {*sources, to_group}, at)
    return to_group


# ---- correcting: one follow-up text to each fan ----------------------------------------------


async def correct(
    db: Database,
    agent: Agent,
    group_id: int,
    body: str,
    *,
    request_key: str | None = None,
    quiet: QuietHours | None = WAKING_HOURS,
    at: datetime | None = None,
) -> CorrectionResult:
    """One follow-up text to every fan of the group whom no correction texted yet, exactly once
    each; `request_key`: a retry with the same key continues the first correction. `quiet`: the
    waking hours (None: at any hour)."""
    body = agent_text(body)
    parts = template(body)
    if request_key is not None and not (0 < len(request_key) <= 64):
        raise BadRequest("request_key is 1-64 characters")
    at = utc(at) if at else now()
    correction_id = await db.run(_start, agent, group_id, body, request_key, at)
    after, written, skipped = 0, [], []
    while True:
        chunk = await with_retry(db, _chunk, group_id, correction_id, agent.id, parts, quiet,
                                  at, after)  # fmt: skip
        written += chunk.outbox_ids
        skipped += chunk.skipped
        if chunk.last_contact is None:
            break
        after = chunk.last_contact
    fans = await db.run(_finish, group_id, correction_id, agent.id, at)
    return CorrectionResult(correction_id, fans, tuple(skipped), tuple(written))


def _start(
    conn: Connection, agent: Agent, group_id: int, body: str, request_key: str | None,
    at: datetime,
) -> int:  # fmt: skip
    if request_key is not None and (first := sql.correction_by_key(conn, request_key)):
        if first["group_id"] != group_id:
            raise Conflict("this request_key was used for another group")
        return int(first["id"])
    if sql.group_row(conn, group_id, lock=True) is None:
        raise NotFound("no such group of bot answers")
    correction_id = sql.insert_correction(conn, group_id=group_id, agent_id=agent.id, body=body,
                                          request_key=request_key, created_at=at)  # fmt: skip
    if correction_id is None:  # the same key won a race a moment ago: that one is it
        first = sql.correction_by_key(conn, request_key or "")
        assert first is not None
        return int(first["id"])
    return int(correction_id)


def _chunk(
    conn: Connection, group_id: int, correction_id: int, agent_id: int, parts: tuple[Any, ...],
    quiet: QuietHours | None, at: datetime, after: int,
) -> Chunk:  # fmt: skip
    sql.group_row(conn, group_id, lock=True)  # corrections of one group take turns, chunk by chunk
    contact_ids = sql.fans_to_correct(conn, group_id, after, CHUNK)
    if not contact_ids:
        return Chunk([], [], None)
    last = contact_ids[-1] if len(contact_ids) == CHUNK else None
    claimed = sql.claim_texts(conn, group_id, contact_ids, correction_id, at)  # exactly once
    contacts = sql.fans(conn, list(claimed))
    numbers = sql.our_numbers(conn, list(claimed.values()))
    outbox, sent_to, skipped = [], [], []
    for contact_id, text_id in sorted(claimed.items()):
        fan = contacts[contact_id]
        if fan["phone"] is None or fan["erased_at"] is not None:
            skipped.append({"contact_id": contact_id, "reason": "erased"})
            continue
        if fan["subscription"] == "unsubscribed":
            skipped.append({"contact_id": contact_id, "reason": "opted_out"})
            continue
        outbox.append(outbox_row(fan, parts, numbers.get(text_id), text_id, agent_id, quiet, at))
        sent_to.append((contact_id, text_id))
    ids = sql.insert_outbox(conn, outbox)
    sql.insert_correction_fans(conn, [
        {"correction_id": correction_id, "contact_id": c, "message_id": mid, "created_at": at}
        for (c, _), mid in zip(sent_to, ids, strict=True)
    ])  # fmt: skip
    sql.add_events(conn, [
        {"contact_id": c, "message_id": mid, "type": "answer_corrected", "at": at,
         "data": {"agent_id": agent_id, "message_id": mid, "reply_to": text_id,
                  "answer_group_id": group_id, "correction_id": correction_id}}
        for (c, text_id), mid in zip(sent_to, ids, strict=True)
    ])  # fmt: skip
    return Chunk(ids, skipped, last)


def _finish(
    conn: Connection, group_id: int, correction_id: int, agent_id: int, at: datetime
) -> int:
    row = sql.group_row(conn, group_id, lock=True)
    if row is not None and row["status"] in ("open", "right"):
        sql.update_group(conn, group_id, status="corrected", reviewed_by=agent_id,
                         reviewed_at=at, updated_at=at)  # fmt: skip
    return sql.finish_correction(conn, correction_id)


# ---- teaching from a group -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taught:
    intent: str
    examples: tuple[str, ...]
    files: tuple[str, ...]
    retraining: bool
    new_faq: bool  # a new intent and response; else examples added to an existing intent

    def to_json(self) -> dict[str, Any]:
        return {"intent": self.intent, "examples": list(self.examples), "files": list(self.files),
                "retraining": self.retraining, "new_faq": self.new_faq}  # fmt: skip


async def group_examples(db: Database, group_id: int) -> list[str]:
    """The group's texts as teaching takes them: scrubbed of numbers, emails and the fans'
    names, one line each, distinct, at most `MAX_EXAMPLES`."""
    if await db.run(sql.group_row, group_id) is None:
        raise NotFound("no such group of bot answers")
    found: dict[str, str] = {}
    for body, profile in await db.run(sql.fan_texts, group_id):
        for text in content_writer.clean_examples([scrub(body or "", profile_names(profile))]):
            found.setdefault(text.lower(), text)
        if len(found) >= MAX_EXAMPLES:
            break
    return list(found.values())


async def teach(
    db: Database, teacher: Any, agent: Agent, group_id: int, *, intent: str,
    response: str | None = None, examples: list[str] | None = None,
) -> Taught:  # fmt: skip
    """Teach the bot from a group's texts (admins): with a `response`, a new FAQ (`bot.teach`'s
    "make this an FAQ"); without one, the texts become examples of an existing `intent` (the
    bot should have answered that). Then the bot retrains; the group is `taught`."""
    from bot.teach import service as teaching

    if not getattr(agent, "is_admin", False):
        raise Forbidden("only admins teach the bot")
    content_writer.check_intent_name(intent)
    texts = examples if examples is not None else await group_examples(db, group_id)
    texts = content_writer.clean_examples(scrub(t) for t in texts)[:MAX_EXAMPLES]
    if response is not None and response.strip():
        row = await db.run(sql.group_row, group_id)
        sent = row["broadcast_id"] if row else None
        broadcast = await db.run(lambda c: label_store.broadcast_body(c, broadcast_id=sent))
        taught = await teaching.teach(db, teacher, agent, intent=intent, response=response,
                                      examples=texts, broadcast=broadcast)  # fmt: skip
        result = Taught(intent, taught.examples, taught.files, taught.retraining, True)
    else:
        if not texts:
            raise BadRequest("no example texts to teach from")
        files = await asyncio.to_thread(
            content_writer.add_examples, teacher.project_dir, intent, texts,
            actions=teacher.actions, max_segments=teacher.max_segments,
        )  # fmt: skip
        if files and teacher.autotrain:
            await teacher.request(agent.id)  # the worker holding the `retrain` lease trains it
        result = Taught(intent, tuple(texts), tuple(files or ()), bool(teacher.autotrain), False)

    def mark(conn: Connection) -> None:
        at = now()
        sql.update_group(conn, group_id, status="taught", taught_intent=intent,
                         reviewed_by=agent.id, reviewed_at=at, updated_at=at)  # fmt: skip
        sql.review(conn, group_id, at)

    await db.run(mark)
    return result


__all__ = [
    "AnswerGroup", "AnswerText", "CorrectionResult", "GroupDetail", "Taught", "answer_counts",
    "correct", "group", "group_examples", "list_groups", "mark_right", "move_texts", "teach",
]  # fmt: skip
