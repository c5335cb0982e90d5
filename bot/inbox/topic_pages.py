"""The inbox's topics pages under /inbox: topics by size or wait, one topic (move, split, merge,
rename, reply to every fan, auto-reply, make an FAQ), suggestions, and the thread page's labels.

Off the inbound path, beside `views.py`: plain HTML forms posting to these routes, which run the
same actions as the JSON API (`topics.py`) under the same rules (`authorise`). Fan texts are
hostile: the templates autoescape everything.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, redirect

from bot.errors import BadRequest, Conflict, NotFound
from bot.inbox.topics import (
    decide_suggestion,
    known_intents,
    label_turn,
    list_args,
    regroup_topics,
    teach_faq,
    topic_action,
)
from bot.inbox.web import Inbox, authorise
from bot.storage import inbox_store as inbox_sql
from bot.storage import label_store
from bot.teach import content_writer
from bot.teach import service as teaching
from bot.teach.scrub import profile_names, scrub
from bot.topics import service as topics

_INTENT = re.compile(r"[^a-z0-9]+")


def topic_page_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    @bp.get("/topics")
    async def topics_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        status, order = list_args(request.args)
        return await _listing(page, inbox, session, status, order)

    @bp.get("/topics/<topic_id:int>")
    async def topic_page(request: Request, topic_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        return await _topic(page, inbox, session, topic_id)

    @bp.post("/topics/regroup")
    async def topic_regroup(request: Request) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, admin=True, csrf=form.get("csrf") or "")
        await regroup_topics(inbox, session.agent)
        return redirect("/inbox/topics", status=303)

    @bp.post("/topics/<topic_id:int>/<action:(reply|move|split|merge|rename|auto)>")
    async def topic_act(request: Request, topic_id: int, action: str) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, csrf=form.get("csrf") or "")
        try:
            data = _form_data(action, form)
            result = await topic_action(inbox, "move" if action == "split" else action,
                                        topic_id, session.agent, data)  # fmt: skip
        except (BadRequest, Conflict, NotFound) as exc:
            return await _topic(page, inbox, session, topic_id, str(exc), exc.status, form=form)
        if action == "merge":
            return redirect(f"/inbox/topics/{result['into']}", status=303)
        if action == "reply":
            return redirect(f"/inbox/topics/{topic_id}?replied={result.get('reply_id', '')}",
                            status=303)  # fmt: skip
        return redirect(f"/inbox/topics/{topic_id}", status=303)

    @bp.post("/teach")
    async def topic_teach(request: Request) -> HTTPResponse:
        """Make an FAQ from a topic (its page) or a thread (the thread page), admins only."""
        form = request.form or {}
        session = await authorise(request, inbox, admin=True, csrf=form.get("csrf") or "")
        topic_id, conversation_id = _opt(form.get("topic_id")), _opt(form.get("conversation_id"))
        data = {
            "topic_id": topic_id,
            "conversation_id": conversation_id,
            "intent": form.get("intent") or "",
            "response": form.get("response") or "",
        }
        try:
            ticked = form.getlist("examples") or []
            offered = await faq_examples(inbox, topic_id=topic_id, conversation_id=conversation_id)
            if set(ticked) != set(offered):  # the admin left some out: teach only the rest
                data["examples"] = ticked
            taught = await teach_faq(inbox, session.agent, data)
        except (BadRequest, Conflict, NotFound) as exc:
            if topic_id is None:
                return page("error.html", exc.status, session=session, message=str(exc))
            return await _topic(page, inbox, session, topic_id, str(exc), exc.status, form=form)
        return page("taught.html", session=session, taught=taught.to_json(), topic_id=topic_id,
                    conversation_id=conversation_id)  # fmt: skip

    _label_routes(bp, inbox, page)


def _label_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    @bp.post("/messages/<message_id:int>/label")
    async def topic_label(request: Request, message_id: int) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, csrf=form.get("csrf") or "")
        data = {"verdict": form.get("verdict") or "", "intent": form.get("intent") or None}
        await label_turn(inbox, session.agent, message_id, data)
        back = form.get("conversation") or ""
        target = f"/inbox/threads/{back}#m{message_id}" if back.isdigit() else "/inbox"
        return redirect(target, status=303)

    @bp.get("/suggestions")
    async def topic_suggestions_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        return await _suggestions(page, inbox, session, request.args.get("status", "new"))

    @bp.post("/suggestions/<label_id:int>/<verdict:(accept|reject)>")
    async def topic_decide(request: Request, label_id: int, verdict: str) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, admin=True, csrf=form.get("csrf") or "")
        try:
            await decide_suggestion(inbox, session.agent, label_id, verdict,
                                    {"intent": form.get("intent") or None})  # fmt: skip
        except (BadRequest, Conflict, NotFound) as exc:
            return await _suggestions(page, inbox, session, "new", str(exc), exc.status)
        return redirect("/inbox/suggestions", status=303)


async def _listing(
    page: Any, inbox: Inbox, session: Any, status: str, order: str, error: str = "", code: int = 200
) -> HTTPResponse:
    items = await topics.list_topics(inbox.db, status=status, order=order)
    counts = await topics.topic_counts(inbox.db)
    return page("topics.html", code, session=session, items=[view(t.to_json()) for t in items],
                counts=counts, state=status, order=order, error=error)  # fmt: skip


async def _topic(
    page: Any, inbox: Inbox, session: Any, topic_id: int, error: str = "", code: int = 200,
    form: Any = None,
) -> HTTPResponse:  # fmt: skip
    detail = await topics.topic(inbox.db, topic_id)
    summary = view(detail.summary.to_json())
    others = [t.to_json() for t in await topics.list_topics(inbox.db, status="open", order="size")]
    names = await _agent_names(inbox)
    replies = [
        {**r, "agent": names.get(r["agent_id"], "agent")} for r in detail.to_json()["replies"]
    ]
    form = form or {}
    faq = None
    if session.agent.is_admin:
        faq = {"intent": form.get("intent") or intent_name(summary["label"]),
               "response": form.get("response") or (replies[-1]["body"] if replies else ""),
               "examples": await faq_examples(inbox, topic_id=topic_id)}  # fmt: skip
    return page("topic.html", code, session=session, topic=summary,
                texts=[t.to_json() for t in detail.texts], replies=replies, faq=faq,
                others=[t for t in others if t["id"] != topic_id], error=error,
                request_key=secrets.token_urlsafe(18), draft=form.get("body") or "")  # fmt: skip


async def _suggestions(
    page: Any, inbox: Inbox, session: Any, status: str, error: str = "", code: int = 200
) -> HTTPResponse:
    items = await teaching.list_suggestions(inbox.db, status=status)
    names = await _agent_names(inbox)
    return page("suggestions.html", code, session=session, state=status, error=error,
                items=[{**s.to_json(), "agent": names.get(s.agent_id, "")} for s in items],
                intents=known_intents(inbox))  # fmt: skip


async def thread_faq(inbox: Inbox, thread: Any) -> dict[str, Any]:
    """The thread page's "Make this an FAQ" prefill: the fan's texts, the agent's last answer."""
    answers = [e.body for e in thread.timeline if e.kind == "agent"]
    return {"intent": "", "response": answers[-1] if answers else "",
            "examples": await faq_examples(inbox, conversation_id=thread.conversation_id)}  # fmt: skip


async def thread_labels(inbox: Inbox, thread: Any) -> dict[str, dict[str, Any]]:
    """The agents' labels on the thread's fan texts, by timeline entry id ("m<message id>")."""
    ids = [int(e.id[1:]) for e in thread.timeline if e.kind == "fan"]
    labels = await inbox.db.run(inbox_sql.turn_labels_of, ids)
    return {f"m{mid}": label for mid, label in labels.items()}


async def faq_examples(
    inbox: Inbox, *, topic_id: int | None = None, conversation_id: int | None = None
) -> list[str]:
    """The examples "Make this an FAQ" writes when all stay ticked: the fans' texts scrubbed of
    numbers, emails and their names, cleaned and distinct, as `teach` itself takes them."""
    if topic_id is not None:
        rows = await inbox.db.run(label_store.topic_fan_texts, topic_id)
    else:
        rows = await inbox.db.run(label_store.thread_fan_texts, conversation_id) or []
    found: dict[str, str] = {}  # the first distinct ones, as `clean_examples` keeps them
    for body, profile in rows:
        for text in content_writer.clean_examples([scrub(body or "", profile_names(profile))]):
            found.setdefault(text.lower(), text)
        if len(found) >= teaching.MAX_EXAMPLES:  # a storm's topic: no need to scrub the rest
            break
    return list(found.values())


async def _agent_names(inbox: Inbox) -> dict[int, str]:
    return {a.id: a.display_name for a in await inbox.auth.list_agents()}


def view(summary: dict[str, Any]) -> dict[str, Any]:
    """A topic's JSON as the templates read it: guesses as (intent, confidence or None),
    examples distinct."""
    guesses = []
    for g in summary.get("guesses") or ():
        if isinstance(g, str):
            guesses.append((g, None))
        elif isinstance(g, dict):
            guesses.append((str(g.get("intent")), g.get("confidence")))
        else:
            guesses.append((str(g[0]), float(g[1]) if len(g) > 1 else None))
    examples: dict[str, str] = {}  # many fans send the very same words: show each once
    for text in summary.get("examples") or ():
        examples.setdefault(" ".join(text.lower().split()), text)
    return {**summary, "guesses": guesses, "examples": list(examples.values())}


def intent_name(label: str) -> str:
    """A topic's label as an intent name: "denver show weather" -> "ask_denver_show_weather"."""
    words = _INTENT.sub("_", label.lower()).strip("_")
    return f"ask_{words}"[:60].rstrip("_") if words else ""


def _form_data(action: str, form: Any) -> dict[str, Any]:
    """A topic form's fields as the API's JSON (the checks live in `topic_action`)."""
    if action == "reply":
        minutes = (form.get("auto_minutes") or "") if form.get("auto") else ""
        return {"body": form.get("body") or "", "request_key": form.get("request_key") or None,
                "auto_minutes": _whole(minutes, "minutes") if minutes else None}  # fmt: skip
    if action in ("move", "split"):
        ids = [_whole(i, "message id") for i in form.getlist("message_ids") or []]
        if not ids:
            raise BadRequest("tick the texts to move first")
        to = (form.get("to") or "") if action == "move" else ""
        if action == "move" and not to:
            raise BadRequest("choose the topic to move the texts to")
        return {"message_ids": ids, "to": _whole(to, "topic id") if to else None}
    if action == "merge":
        into = form.get("into") or ""
        if not into:
            raise BadRequest("choose the topic to merge into")
        return {"into": _whole(into, "topic id")}
    if action == "rename":
        return {"label": form.get("label") or ""}
    if action == "auto":
        if form.get("off"):
            return {"off": True}
        return {"minutes": _whole(form.get("minutes") or "0", "minutes")}
    return {}


def _opt(raw: str | None) -> int | None:
    return _whole(raw, "id") if raw else None


def _whole(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"the {what} must be a whole number") from exc
