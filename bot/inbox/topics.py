"""The inbox's topics, teach and suggestions routes under /api/v1, and the actions they share with
the HTML forms (`topic_pages.py`).

Off the inbound path: the service functions of `bot.topics.service` (topics of waiting texts,
one reply to many) and `bot.teach.service` (make an FAQ, label a bot turn, suggestions) do the
work; these routes check roles and input, then, after commit, wake the outbox sender and announce
the change on the live hub (ids only, never texts). Every agent reads, moves, merges, renames,
replies and labels; admins teach, accept or reject suggestions and re-group.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from bot.errors import BadRequest, NotFound
from bot.inbox.auth import now
from bot.inbox.web import Inbox, authorise, json_body
from bot.storage import inbox_store as inbox_sql
from bot.teach import service as teaching
from bot.topics import service as topics

STATUSES = ("open", "answered", "merged")
ORDERS = ("size", "wait")
SUGGESTIONS = ("new", "accepted", "rejected", "all")
MAX_AUTO_MINUTES = 7 * 24 * 60  # an auto-reply is for a wave of texts, not forever
TOPIC_ACTIONS = ("reply", "move", "merge", "rename", "auto")
MAX_TEXTS = 5000  # message ids in one move


def topic_routes(bp: Blueprint, inbox: Inbox) -> None:
    db = inbox.db

    @bp.get("/topics")
    async def api_list_topics(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        status, order = list_args(request.args)
        items = await topics.list_topics(db, status=status, order=order,
                                         limit=_limit(request.args.get("limit")))  # fmt: skip
        return json({"status": status, "order": order, "counts": await topics.topic_counts(db),
                     "items": [t.to_json() for t in items]})  # fmt: skip

    @bp.get("/topics/<topic_id:int>")
    async def api_one_topic(request: Request, topic_id: int) -> HTTPResponse:
        await authorise(request, inbox)
        return json((await topics.topic(db, topic_id)).to_json())

    @bp.post("/topics/regroup")
    async def api_regroup(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        return json({"ok": True, **await regroup_topics(inbox, session.agent)})

    @bp.post("/topics/<topic_id:int>/<action:str>")
    async def api_act(request: Request, topic_id: int, action: str) -> HTTPResponse:
        session = await authorise(request, inbox)
        data = json_body(request)
        return json(
            {"ok": True, **await topic_action(inbox, action, topic_id, session.agent, data)}
        )

    _teach_routes(bp, inbox)


def _teach_routes(bp: Blueprint, inbox: Inbox) -> None:
    db = inbox.db

    @bp.post("/teach")
    async def api_teach(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        taught = await teach_faq(inbox, session.agent, json_body(request))
        return json({"ok": True, **taught.to_json()})

    @bp.post("/messages/<message_id:int>/label")
    async def api_label(request: Request, message_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        label_id = await label_turn(inbox, session.agent, message_id, json_body(request))
        return json({"ok": True, "label_id": label_id})

    @bp.get("/suggestions")
    async def api_suggestions(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        status = request.args.get("status", "new")
        if status not in SUGGESTIONS:
            raise BadRequest(f"status must be one of {', '.join(SUGGESTIONS)}")
        items = await teaching.list_suggestions(db, status=status,
                                                limit=_limit(request.args.get("limit")))  # fmt: skip
        return json({"status": status, "items": [s.to_json() for s in items]})

    @bp.post("/suggestions/<label_id:int>/<action:(accept|reject)>")
    async def api_decide(request: Request, label_id: int, action: str) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        result = await decide_suggestion(inbox, session.agent, label_id, action,
                                         json_body(request))  # fmt: skip
        return json({"ok": True, **result})

    @bp.get("/intents")
    async def api_intents(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        return json({"intents": known_intents(inbox)})


# ---- actions shared with the HTML forms --------------------------------------------------------


async def topic_action(
    inbox: Inbox, action: str, topic_id: int, agent: Any, data: dict[str, Any]
) -> dict[str, Any]:
    """Run one topic action after checking its input, then wake the sender and announce it."""
    db = inbox.db
    result: dict[str, Any]
    if action == "reply":
        body, key, minutes = reply_args(data)
        sent = await topics.reply_to_topic(db, agent, topic_id, body, request_key=key,
                                           auto_minutes=minutes)  # fmt: skip
        result = sent.to_json()
        inbox.notify_outbox()  # committed: the sender may take the fans' texts now
    elif action == "move":
        ids, to = move_args(data)
        # the topic the texts are in now (a new one for a split)
        result = {"to": await topics.move_texts(db, agent, ids, to), "moved": len(set(ids))}
    elif action == "merge":
        into = data.get("into")
        if isinstance(into, bool) or not isinstance(into, int):
            raise BadRequest("`into` must be the id of the topic to merge into")
        if into == topic_id:
            raise BadRequest("a topic cannot be merged into itself")
        await topics.merge(db, agent, topic_id, into)
        result = {"into": into}
    elif action == "rename":
        label = data.get("label")
        if not isinstance(label, str) or not label.strip():
            raise BadRequest("`label` must be a non-empty string")
        if len(label.strip()) > 120:
            raise BadRequest("`label` is at most 120 characters")
        await topics.rename(db, agent, topic_id, label.strip())
        result = {"label": label.strip()}
    elif action == "auto":
        until = auto_until(data)
        await topics.set_auto_reply(db, agent, topic_id, until)
        result = {"auto_until": until.isoformat() if until else None}
    else:
        raise NotFound("no such action")
    inbox.hub.publish("topic", {"topic_id": topic_id, "action": action, "agent_id": agent.id})
    return result


async def regroup_topics(inbox: Inbox, agent: Any) -> dict[str, Any]:
    sweep = inbox.sweep()
    if sweep is None:
        raise BadRequest("re-grouping needs the running server's topic sweep")
    result = await topics.regroup(inbox.db, sweep)
    inbox.hub.publish("topic", {"topic_id": None, "action": "regroup", "agent_id": agent.id})
    return dict(result.to_json())


async def teach_faq(inbox: Inbox, agent: Any, data: dict[str, Any]) -> Any:
    """Make an FAQ from a topic or a thread (admins): writes the content files, retrains."""
    teacher = inbox.teacher()
    if teacher is None:
        raise BadRequest("teaching needs the running server's content and model")
    topic_id, conversation_id = _opt_id(data, "topic_id"), _opt_id(data, "conversation_id")
    if (topic_id is None) == (conversation_id is None):
        raise BadRequest("give exactly one of `topic_id` or `conversation_id`")
    intent, response = data.get("intent"), data.get("response")
    if not isinstance(intent, str) or not intent.strip():
        raise BadRequest("`intent` must be a non-empty string")
    if not isinstance(response, str) or not response.strip():
        raise BadRequest("`response` must be the answer's text")
    examples = data.get("examples")
    if examples is not None and (
        not isinstance(examples, list) or not all(isinstance(e, str) for e in examples)
    ):
        raise BadRequest("`examples` must be a list of strings")
    taught = await teaching.teach(
        inbox.db, teacher, agent, topic_id=topic_id, conversation_id=conversation_id,
        intent=intent.strip(), response=response.strip(), examples=examples,
    )  # fmt: skip
    inbox.hub.publish("topic", {"topic_id": topic_id, "action": "teach", "agent_id": agent.id})
    return taught


async def label_turn(inbox: Inbox, agent: Any, message_id: int, data: dict[str, Any]) -> int:
    verdict, intent = data.get("verdict"), data.get("intent")
    if verdict not in ("intent", "handover"):
        raise BadRequest("`verdict` must be `intent` or `handover`")
    if verdict == "intent" and (not isinstance(intent, str) or not intent.strip()):
        raise BadRequest("`intent` names the intent the bot should have answered")
    if verdict == "handover":
        intent = None
    # an agent labels only turns of threads they may read (the label keeps the fan's text)
    conversation_id = await inbox.db.run(inbox_sql.conversation_of_message, message_id)
    if conversation_id is None:
        raise NotFound("no such fan text")
    if not agent.is_admin and not await inbox.db.run(inbox_sql.reached_the_inbox, conversation_id):
        raise NotFound("no such fan text")
    return await teaching.label_turn(inbox.db, agent, message_id, verdict,
                                     intent.strip() if intent else None)  # fmt: skip


async def decide_suggestion(
    inbox: Inbox, agent: Any, label_id: int, verdict: str, data: dict[str, Any]
) -> dict[str, Any]:
    if verdict == "reject":
        return {"suggestion": (await teaching.reject(inbox.db, agent, label_id)).to_json()}
    teacher = inbox.teacher()
    if teacher is None:
        raise BadRequest("accepting needs the running server's content and model")
    intent = data.get("intent")
    if intent is not None and (not isinstance(intent, str) or not intent.strip()):
        raise BadRequest("`intent` must be a non-empty string when given")
    result = await teaching.accept(inbox.db, teacher, agent, label_id,
                                   intent.strip() if intent else None)  # fmt: skip
    return {"suggestion": result.to_json(), "retraining": bool(teacher.autotrain)}


def known_intents(inbox: Inbox) -> list[str]:
    """The loaded content's intents (what the model was trained on), for the label picker."""
    runtime = inbox.runtime()
    content = getattr(runtime, "content", None)
    data = getattr(content, "nlu_data", None)
    if data is None:
        return []
    return sorted({e.intent for e in data.examples})


# ---- input ----------------------------------------------------------------------------------


def list_args(args: Any) -> tuple[str, str]:
    status, order = args.get("status", "open"), args.get("order", "size")
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if order not in ORDERS:
        raise BadRequest(f"order must be one of {', '.join(ORDERS)}")
    return status, order


def reply_args(data: dict[str, Any]) -> tuple[str, str | None, int | None]:
    body, key, minutes = data.get("body"), data.get("request_key"), data.get("auto_minutes")
    if not isinstance(body, str) or not body.strip():
        raise BadRequest("`body` must be the reply's text")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 64):
        raise BadRequest("`request_key` must be a string of 1 to 64 characters")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise BadRequest("`auto_minutes` must be a whole number of minutes")
        if not 0 <= minutes <= MAX_AUTO_MINUTES:
            raise BadRequest(f"`auto_minutes` is between 0 and {MAX_AUTO_MINUTES}")
    return body, key, minutes or None


def move_args(data: dict[str, Any]) -> tuple[list[int], int | None]:
    ids, to = data.get("message_ids"), data.get("to")
    if (
        not isinstance(ids, list) or not ids or len(ids) > MAX_TEXTS
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ):  # fmt: skip
        raise BadRequest(f"`message_ids` must be a list of 1 to {MAX_TEXTS} message ids")
    if to is not None and (isinstance(to, bool) or not isinstance(to, int)):
        raise BadRequest("`to` must be a topic id, or null for a new topic")
    return ids, to


def auto_until(data: dict[str, Any]) -> datetime | None:
    """`off`, `until` (ISO 8601, in the future) or `minutes` from now."""
    if data.get("off"):
        return None
    if data.get("until"):
        try:
            until = datetime.fromisoformat(str(data["until"]))
        except ValueError as exc:
            raise BadRequest("`until` must be an ISO 8601 date-time") from exc
        until = until if until.tzinfo else until.replace(tzinfo=now().tzinfo)
        if until <= now():
            raise BadRequest("`until` must be in the future")
        if until > now() + timedelta(minutes=MAX_AUTO_MINUTES):
            raise BadRequest("an auto-reply runs for at most 7 days")
        return until
    minutes = data.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        raise BadRequest("give `minutes`, `until` or `off`")
    if not 0 < minutes <= MAX_AUTO_MINUTES:
        raise BadRequest(f"`minutes` is between 1 and {MAX_AUTO_MINUTES}")
    return now() + timedelta(minutes=minutes)


def _opt_id(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"`{key}` must be an integer")
    return value


def _limit(raw: str | None) -> int:
    try:
        limit = int(raw) if raw else 100
    except ValueError as exc:
        raise BadRequest("`limit` must be an integer") from exc
    if not 1 <= limit <= 500:
        raise BadRequest("`limit` is between 1 and 500")
    return limit
