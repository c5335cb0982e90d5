"""The inbox's JSON API under /api/v1 (documented at /api/v1/openapi.json), for the inbox's own
page scripts and for teams' other tools. Same sessions, CSRF and roles as the web pages.

Off the inbound path: it calls the queue's service functions, then announces the change on the
live hub and wakes the outbox sender, both after the transaction committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json

from bot.errors import BadRequest, HttpError, NotFound
from bot.inbox import broadcasts, queue, threads
from bot.inbox.auth import COOKIE, TooManyAttempts, now
from bot.inbox.live import stream
from bot.inbox.openapi import openapi_document
from bot.inbox.review import review_routes
from bot.inbox.topics import topic_routes
from bot.inbox.web import (
    Inbox,
    authorise,
    check_same_origin,
    client_ip,
    json_body,
    require_readable,
)


def api_blueprint(inbox: Inbox) -> Blueprint:
    bp = Blueprint("inbox_api", url_prefix="/api/v1")

    @bp.exception(HttpError)
    async def http_error(request: Request, exc: HttpError) -> HTTPResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else {}
        return json({"error": str(exc)}, status=exc.status, headers=headers)

    @bp.get("/openapi.json")
    async def openapi(request: Request) -> HTTPResponse:
        return json(openapi_document())

    # ---- session ------------------------------------------------------------------------

    @bp.post("/session")
    async def login(request: Request) -> HTTPResponse:
        check_same_origin(request)  # login CSRF: another site must not log a browser in
        data = json_body(request)
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise BadRequest("expected {username, password}")
        session = await inbox.auth.login(username, password, client_ip(request))
        response = json({"agent": session.agent.to_json(), "csrf_token": session.csrf})
        inbox.set_session_cookie(response, session.cookie)
        return response

    @bp.get("/session")
    async def me(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        return json({"agent": session.agent.to_json(), "csrf_token": session.csrf})

    @bp.delete("/session")
    async def logout(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        await inbox.auth.logout(request.cookies.get(COOKIE))
        response = json({"ok": True})
        inbox.clear_session_cookie(response)
        return response

    _thread_routes(bp, inbox)
    _agent_routes(bp, inbox)
    _broadcast_routes(bp, inbox)
    topic_routes(bp, inbox)  # topics, teach, labels, suggestions
    review_routes(bp, inbox)  # bot answers to review
    return bp


def _thread_routes(bp: Blueprint, inbox: Inbox) -> None:
    db = inbox.db

    @bp.get("/queue")
    async def list_queue(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        page = await queue.list_queue(
            db, request.args.get("view", "unassigned"), session.agent,
            limit=_int(request, "limit", queue.PAGE), offset=_int(request, "offset", 0),
        )  # fmt: skip
        return json({"view": page.view, "counts": page.counts, "total": page.total,
                     "items": [i.to_json() for i in page.items]})  # fmt: skip

    @bp.get("/conversations/<conversation_id:int>")
    async def thread(request: Request, conversation_id: int) -> HTTPResponse:
        await require_readable(inbox, await authorise(request, inbox), conversation_id)
        return json((await threads.load_thread(db, conversation_id)).to_json())

    @bp.post("/conversations/<conversation_id:int>/<action:str>")
    async def act(request: Request, conversation_id: int, action: str) -> HTTPResponse:
        session = await authorise(request, inbox)
        result = await perform(inbox, action, conversation_id, session.agent, json_body(request))
        return json({"ok": True, **result})

    @bp.get("/canned-replies")
    async def canned(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        return json([{"key": c.key, "title": c.title, "text": c.text} for c in inbox.config.canned])

    @bp.get("/stats")
    async def stats(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        return json((await threads.service_timers(db, days=_float(request, "days", 7.0))).to_json())

    @bp.get("/model")
    async def model(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        return json(await model_status(inbox))

    @bp.get("/events")
    async def events(request: Request) -> None:
        await authorise(request, inbox)
        response = await request.respond(
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        cookie = request.cookies.get(COOKIE)

        async def still_valid() -> bool:  # a logged-out or disabled agent's feed stops
            return await inbox.auth.session(cookie) is not None

        await stream(response, inbox.hub, still_valid)


async def model_status(inbox: Inbox) -> dict[str, Any]:
    """The model this process serves and the newest retrain request: `live` once the model
    that request's training made (the worker's) is the one loaded here."""
    from pathlib import Path

    from bot.teach import requests

    runtime = inbox.runtime()
    interpreter = runtime.pipeline.brain.interpreter if runtime is not None else None
    folder = getattr(interpreter, "model_dir", None)
    loaded = Path(folder).name if folder else None
    row = await inbox.db.run(requests.latest)
    if row is None:
        return {"model": loaded, "retrain": None, "live": True}
    retrain = {"id": row["id"], "status": row["status"], "model": row["model"],
               "error": row["error"], "seconds": None}  # fmt: skip
    if row["finished_at"] is not None and row["started_at"] is not None:
        retrain["seconds"] = round(row["finished_at"] - row["started_at"], 2)
    live = row["status"] in ("done", "failed") and row["trained_model"] in (None, loaded)
    return {"model": loaded, "retrain": retrain, "live": live}


def _agent_routes(bp: Blueprint, inbox: Inbox) -> None:
    """Admins manage agents; agents may list active colleagues (to hand a thread over)."""

    @bp.get("/agents")
    async def agents(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        listed = await inbox.auth.list_agents()
        if not session.agent.is_admin:  # agents see who they can hand a thread to
            listed = [a for a in listed if a.active]
        return json([a.to_json() for a in listed])

    @bp.post("/agents")
    async def add_agent(request: Request) -> HTTPResponse:
        await authorise(request, inbox, admin=True)
        data = json_body(request)
        agent = await inbox.auth.create_agent(
            str(data.get("username", "")), str(data.get("password", "")),
            role=str(data.get("role", "agent")), display_name=str(data.get("display_name", "")),
        )  # fmt: skip
        return json(agent.to_json(), status=201)

    @bp.post("/agents/<username:str>/<state:(disable|enable)>")
    async def set_active(request: Request, username: str, state: str) -> HTTPResponse:
        await authorise(request, inbox, admin=True)
        return json((await inbox.auth.set_active(username, state == "enable")).to_json())


def _broadcast_routes(bp: Blueprint, inbox: Inbox) -> None:
    """Every agent may watch broadcasts go out; only admins pause, resume or cancel them."""

    @bp.get("/broadcasts")
    async def list_broadcasts(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        items = await broadcasts.list_progress(inbox.broadcasts())
        return json({"items": [p.to_json() for p in items],
                     "running": any(p.running for p in items)})  # fmt: skip

    @bp.get("/broadcasts/<broadcast_id:int>")
    async def one_broadcast(request: Request, broadcast_id: int) -> HTTPResponse:
        await authorise(request, inbox)
        return json((await broadcasts.one_progress(inbox.broadcasts(), broadcast_id)).to_json())

    @bp.post("/broadcasts/<broadcast_id:int>/<action:(pause|resume|cancel|send-winner)>")
    async def control(request: Request, broadcast_id: int, action: str) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        moved = await control_broadcast(inbox, broadcast_id, action, session.agent.id)
        now_at = await broadcasts.one_progress(inbox.broadcasts(), broadcast_id)
        return json({"ok": True, "texts": moved, "broadcast": now_at.to_json()})


async def control_broadcast(inbox: Inbox, broadcast_id: int, action: str, agent_id: int) -> int:
    """Pause, resume or cancel (shared by the API and the HTML forms), then announce it."""
    moved = await broadcasts.control(inbox.broadcasts(), broadcast_id, action)
    if action == "resume":
        inbox.notify_outbox()  # released texts are queued again: the sender may take them now
    inbox.hub.publish("broadcast", {"broadcast_id": broadcast_id, "action": action,
                                    "agent_id": agent_id})  # fmt: skip
    return moved


async def perform(
    inbox: Inbox, action: str, conversation_id: int, agent: Any, data: dict[str, Any]
) -> dict[str, Any]:
    """Run one of the thread actions (shared by the API and the HTML forms), then announce it."""
    db, result = inbox.db, {}
    if action == "claim":
        await queue.claim(db, conversation_id, agent)
    elif action == "reply":
        sent = await queue.reply(db, conversation_id, agent, str(data.get("body", "")))
        result = {"message_id": sent.message_id, "segments": sent.segments}
        inbox.notify_outbox()  # committed: the sender may take it now
    elif action == "notes":
        result = {
            "note_id": await queue.add_note(db, conversation_id, agent, str(data.get("body", "")))
        }
    elif action == "tags":
        add, remove = _strings(data.get("add")), _strings(data.get("remove"))
        result = {"tags": await queue.set_tags(db, conversation_id, agent, add, remove)}
    elif action == "resolve":
        await queue.resolve(db, conversation_id, agent)
    elif action == "snooze":
        await queue.snooze(db, conversation_id, agent, snooze_until(data))
    elif action == "reassign":
        to = data.get("agent_id")
        if to is not None and (isinstance(to, bool) or not isinstance(to, int)):
            raise BadRequest("agent_id must be an integer or null")
        await queue.reassign(db, conversation_id, agent, to)
    else:
        raise NotFound("no such action")
    inbox.hub.publish("thread", {"conversation_id": conversation_id, "action": action,
                                 "agent_id": agent.id})  # fmt: skip
    return result


def snooze_until(data: dict[str, Any]) -> datetime:
    """`until` (ISO 8601) or `minutes` from now."""
    if data.get("until"):
        try:
            until = datetime.fromisoformat(str(data["until"]))
        except ValueError as exc:
            raise BadRequest("`until` must be an ISO 8601 date-time") from exc
        return until if until.tzinfo else until.replace(tzinfo=now().tzinfo)
    try:
        minutes = float(data.get("minutes", 0))
    except (TypeError, ValueError) as exc:
        raise BadRequest("`minutes` must be a number") from exc
    if not 0 < minutes <= 60 * 24 * 30:
        raise BadRequest("snooze between one minute and 30 days")
    return now() + timedelta(minutes=minutes)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("tags must be a list of strings")
    return value


def _int(request: Request, key: str, default: int) -> int:
    try:
        return int(request.args.get(key, default))
    except ValueError as exc:
        raise BadRequest(f"`{key}` must be an integer") from exc


def _float(request: Request, key: str, default: float) -> float:
    try:
        return float(request.args.get(key, default))
    except ValueError as exc:
        raise BadRequest(f"`{key}` must be a number") from exc
