"""Teaching the bot: "make this an FAQ" from a topic or a thread, and agents' labels on bot turns.

Service functions called by the inbox API and the CLI (`bot.teach.cli`); SQL lives in
`bot.storage.label_store`, file edits in `bot.teach.content_writer`, retraining in
`bot.teach.teacher` (a request in the database, trained by the worker). `agent` is the inbox
agent acting (`bot.inbox.auth.Agent`), or None for the system (the CLI without `--as`), recorded as agent id 0.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.errors import BadRequest, Conflict, Forbidden, NotFound
from bot.storage import label_store
from bot.teach import content_writer
from bot.teach.scrub import profile_names, scrub
from bot.teach.teacher import Teacher

log = logging.getLogger(__name__)

SYSTEM_AGENT = 0
MAX_EXAMPLES = 50
VERDICTS = ("intent", "handover")
STATUSES = ("new", "accepted", "rejected")


@dataclass(frozen=True, slots=True)
class TaughtFaq:
    intent: str
    response: str
    examples: tuple[str, ...]  # scrubbed
    files: tuple[str, ...]  # project-relative paths changed
    retraining: bool

    def to_json(self) -> dict[str, Any]:
        return {"intent": self.intent, "response": self.response, "examples": list(self.examples),
                "files": list(self.files), "retraining": self.retraining}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: int
    message_id: int
    verdict: str  # intent | handover
    intent: str | None
    predicted: str | None  # what the bot understood: an intent, or out_of_scope
    confidence: float | None
    text: str  # scrubbed
    status: str  # new | accepted | rejected
    agent_id: int
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "message_id": self.message_id, "verdict": self.verdict,
                "intent": self.intent, "predicted": self.predicted,
                "confidence": self.confidence, "text": self.text, "status": self.status,
                "agent_id": self.agent_id, "created_at": _utc(self.created_at).isoformat()}  # fmt: skip


async def teach(
    db: Any,
    teacher: Teacher,
    agent: Any,
    *,
    topic_id: int | None = None,
    conversation_id: int | None = None,
    intent: str,
    response: str,
    examples: list[str] | None = None,
    broadcast: str | None = None,
) -> TaughtFaq:
    """Write a new FAQ from a topic's or a thread's texts (or `examples`), then retrain.

    Taught from the replies to a broadcast (the topic's, or `broadcast`: its text), the answer
    records that broadcast: it knows its news (`bot.nlu.evidence.written_for`)."""
    _require_admin(agent)
    content_writer.check_intent_name(intent)
    if not (response or "").strip():
        raise BadRequest("the response is empty")
    if examples is not None:
        texts = [scrub(t) for t in examples]
    elif topic_id is not None:
        if not await db.run(label_store.topic_exists, topic_id):
            raise NotFound(f"no topic {topic_id}")
        texts = _scrubbed(await db.run(label_store.topic_fan_texts, topic_id))
    elif conversation_id is not None:
        rows = await db.run(label_store.thread_fan_texts, conversation_id)
        if rows is None:
            raise NotFound(f"no conversation {conversation_id}")
        texts = _scrubbed(rows)
    else:
        raise BadRequest("give a topic, a conversation or examples to teach from")
    texts = content_writer.clean_examples(texts)[:MAX_EXAMPLES]
    if len(texts) < 2:
        raise BadRequest(f"an FAQ needs at least 2 distinct example texts; found {len(texts)}")
    if broadcast is None and topic_id is not None:
        broadcast = await db.run(lambda c: label_store.broadcast_body(c, topic_id=topic_id))
    written = await asyncio.to_thread(
        content_writer.add_faq, teacher.project_dir, intent, response.strip(), texts,
        actions=teacher.actions, max_segments=teacher.max_segments, broadcast=broadcast,
    )  # fmt: skip
    log.info("taught intent %s (%d examples) by agent %s", intent, len(written.examples),
             _agent_id(agent))  # fmt: skip
    if teacher.autotrain:  # a durable request: the worker holding the `retrain` lease trains it
        await teacher.request(_agent_id(agent))
    return TaughtFaq(intent, response.strip(), written.examples, written.files, teacher.autotrain)


async def label_turn(
    db: Any, agent: Any, message_id: int, verdict: str, intent: str | None = None
) -> int:
    """An agent's verdict on the bot's turn for a fan's text; the label's id (one per agent and
    text: labelling again replaces the verdict, as a new suggestion)."""
    if verdict not in VERDICTS:
        raise BadRequest(f"verdict must be one of {', '.join(VERDICTS)}")
    if verdict == "intent":
        content_writer.check_intent_name(intent or "")
    else:
        intent = None
    turn = await db.run(label_store.inbound_turn, message_id)
    if turn is None:
        raise NotFound(f"no fan text {message_id}")
    text = scrub(turn["body"] or "", profile_names(turn["profile"]))
    if not text:
        raise BadRequest("the text is empty once scrubbed: nothing to learn from")
    understood = turn["understood"]
    values = {
        "message_id": message_id, "contact_id": turn["contact_id"], "agent_id": _agent_id(agent),
        "verdict": verdict, "intent": intent, "predicted": understood.get("intent"),
        "confidence": understood.get("confidence"), "text": text, "created_at": _now(),
    }  # fmt: skip
    return await db.run(label_store.save_label, values)


async def list_suggestions(
    db: Any, status: str | None = "new", limit: int = 100
) -> list[Suggestion]:
    """Labels, newest first; `status` None or "all" for every one."""
    status = None if status in (None, "all") else status
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)} or all")
    rows = await db.run(label_store.list_labels, status, max(1, min(int(limit), 1000)))
    return [_suggestion(r) for r in rows]


async def accept(
    db: Any, teacher: Teacher, agent: Any, label_id: int, intent: str | None = None
) -> Suggestion:
    """An intent verdict (or any label, given `intent`): its text becomes a training example
    and the bot retrains. A hand-over verdict: kept as real-traffic data, no example."""
    _require_admin(agent)
    label = await _label(db, label_id)
    target = intent or (label["intent"] if label["verdict"] == "intent" else None)
    if target is not None:
        content_writer.check_intent_name(target)
    if label["status"] != "new":
        raise Conflict(f"suggestion {label_id} is {label['status']} already")
    who = _agent_id(agent)
    # decided first, exactly once: of two agents accepting at once, one appends the example
    if not await db.run(label_store.decide, label_id, "accepted", who, _now(), target):
        raise Conflict(f"suggestion {label_id} was decided meanwhile")
    if target is not None:
        try:
            files = await asyncio.to_thread(
                content_writer.add_examples, teacher.project_dir, target, [label["text"]],
                actions=teacher.actions, max_segments=teacher.max_segments,
            )  # fmt: skip
        except BaseException:
            await db.run(label_store.undecide, label_id, who, label["verdict"], label["intent"])
            raise
        if files and teacher.autotrain:
            await teacher.request(who)
    return _suggestion(await _label(db, label_id))


async def reject(db: Any, agent: Any, label_id: int) -> Suggestion:
    _require_admin(agent)
    label = await _label(db, label_id)
    if label["status"] != "new":
        raise Conflict(f"suggestion {label_id} is {label['status']} already")
    if not await db.run(label_store.decide, label_id, "rejected", _agent_id(agent), _now()):
        raise Conflict(f"suggestion {label_id} was decided meanwhile")
    return _suggestion(await _label(db, label_id))


async def training_traffic_of(db: Any) -> list[Any]:
    """The labelled fan texts not trained on, for the threshold (`bot.nlu.train.TrafficText`)."""
    from bot.nlu.train import TrafficText

    return [TrafficText(text, intent) for text, intent in await db.run(label_store.traffic_labels)]


def training_traffic(database_url: str) -> list[Any] | None:
    """`fanline train`'s labelled fan texts: None when the database is not reachable or has
    no labels table (then training is as without labels)."""
    from bot.nlu.train import TrafficText

    rows = label_store.read_traffic(database_url)
    return None if rows is None else [TrafficText(text, intent) for text, intent in rows]


def _scrubbed(rows: list[tuple[str, Any]]) -> list[str]:
    return [scrub(body or "", profile_names(profile)) for body, profile in rows]


async def _label(db: Any, label_id: int) -> dict[str, Any]:
    label = await db.run(label_store.get_label, label_id)
    if label is None:
        raise NotFound(f"no suggestion {label_id}")
    return label


def _suggestion(row: dict[str, Any]) -> Suggestion:
    return Suggestion(
        row["id"], row["message_id"], row["verdict"], row["intent"], row["predicted"],
        row["confidence"], row["text"], row["status"], row["agent_id"], _utc(row["created_at"]),
    )  # fmt: skip


def _require_admin(agent: Any) -> None:
    if agent is not None and not getattr(agent, "is_admin", False):
        raise Forbidden("only admins teach the bot and decide suggestions")


def _agent_id(agent: Any) -> int:
    return SYSTEM_AGENT if agent is None else int(agent.id)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
