"""The inbox web app under /inbox: server-rendered Jinja2 pages, plain HTML forms, one small script.

Off the inbound path, beside the API: the same service functions and rules (`authorise`,
`perform`). Every page works without JavaScript; `static/inbox.js` only adds live updates,
browser notifications, the SMS segment counter and canned replies.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, html, redirect

from bot.errors import BadRequest, Conflict, HttpError, NotFound, Unauthorized
from bot.inbox import broadcasts, queue, threads
from bot.inbox.api import control_broadcast, perform
from bot.inbox.auth import COOKIE, TooManyAttempts
from bot.inbox.report_pages import report_page_routes
from bot.inbox.review import review_page_routes
from bot.inbox.topic_pages import thread_faq, thread_labels, topic_page_routes
from bot.inbox.topics import known_intents
from bot.inbox.web import Inbox, authorise, client_ip, require_readable
from bot.storage import inbox_store as sql
from bot.topics.service import topic_counts

HERE = Path(__file__).parent
LOGIN_CSRF = "fanline_login_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}  # fmt: skip


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["ago"] = ago
    env.filters["pct"] = lambda v: f"{round(float(v) * 100)}%" if v is not None else ""
    env.filters["hm"] = hm
    return env


def hm(at: datetime | str | None) -> str:
    """A time as agents read it ("Dec 02 14:05 UTC"); JSON's ISO strings too."""
    if not at:
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    when = when.astimezone(UTC) if when.tzinfo else when
    return when.strftime("%b %d %H:%M UTC")


def ago(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def views_blueprint(inbox: Inbox) -> Blueprint:
    bp = Blueprint("inbox_views", url_prefix="/inbox")
    bp.static("/static", HERE / "static", name="static")
    env = templates()

    def page(name: str, status: int = 200, **ctx: Any) -> HTTPResponse:
        return html(env.get_template(name).render(**ctx), status=status, headers=HEADERS)

    @bp.exception(HttpError)
    async def http_error(request: Request, exc: HttpError) -> HTTPResponse:
        if isinstance(exc, Unauthorized):
            return redirect("/inbox/login", status=303)
        return page("error.html", exc.status, message=str(exc))

    @bp.get("/login")
    async def login_form(request: Request) -> HTTPResponse:
        return _login_page(page, inbox)

    @bp.post("/login")
    async def login(request: Request) -> HTTPResponse:
        form = request.form or {}
        token = form.get("csrf") or ""
        if not token or not secrets.compare_digest(token, request.cookies.get(LOGIN_CSRF) or ""):
            return _login_page(page, inbox, "Your session expired; please try again.", 403)
        try:
            session = await inbox.auth.login(
                form.get("username") or "", form.get("password") or "", client_ip(request)
            )
        except TooManyAttempts as exc:
            return _login_page(
                page, inbox, f"Too many failed logins. Try again in {ago(exc.retry_after)}.", 429
            )
        except Unauthorized:
            return _login_page(page, inbox, "Wrong username or password.", 401)
        response = redirect("/inbox", status=303)
        inbox.set_session_cookie(response, session.cookie)
        response.delete_cookie(LOGIN_CSRF, path="/inbox")
        return response

    @bp.post("/logout")
    async def logout(request: Request) -> HTTPResponse:
        await authorise(request, inbox, csrf=(request.form or {}).get("csrf") or "")
        await inbox.auth.logout(request.cookies.get(COOKIE))
        response = redirect("/inbox/login", status=303)
        inbox.clear_session_cookie(response)
        return response

    _work_routes(bp, inbox, page)
    _broadcast_routes(bp, inbox, page)
    topic_page_routes(bp, inbox, page)
    review_page_routes(bp, inbox, page)  # bot answers to review
    report_page_routes(bp, inbox, page)  # admins
    return bp


def _work_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    """The queue and the threads: pages, live fragments, and the thread's forms."""

    @bp.get("/")
    async def queue_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        view = request.args.get("view", "unassigned")
        data = await queue.list_queue(inbox.db, view, session.agent)
        timers = await threads.service_timers(inbox.db)
        return page("queue.html", session=session, page=data, timers=timers, views=queue.VIEWS,
                    topic_counts=await topic_counts(inbox.db))  # fmt: skip

    @bp.get("/queue-rows")
    async def queue_rows(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        data = await queue.list_queue(
            inbox.db, request.args.get("view", "unassigned"), session.agent
        )
        return page("_rows.html", session=session, page=data, views=queue.VIEWS,
                    topic_counts=await topic_counts(inbox.db))  # fmt: skip

    @bp.get("/threads/<conversation_id:int>")
    async def thread_page(request: Request, conversation_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        await require_readable(inbox, session, conversation_id)
        return await _thread(page, inbox, session, conversation_id)

    @bp.get("/threads/<conversation_id:int>/timeline")
    async def timeline(request: Request, conversation_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        await require_readable(inbox, session, conversation_id)
        thread = await threads.load_thread(inbox.db, conversation_id)
        return page("_timeline.html", thread=thread, session=session, intents=known_intents(inbox),
                    labels=await thread_labels(inbox, thread))  # fmt: skip

    @bp.post("/threads/<conversation_id:int>/<action:str>")
    async def act(request: Request, conversation_id: int, action: str) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, csrf=form.get("csrf") or "")
        data = _form_data(action, form)
        try:
            await perform(inbox, action, conversation_id, session.agent, data)
        except (Conflict, BadRequest) as exc:
            return await _thread(page, inbox, session, conversation_id, str(exc), exc.status)
        if action == "resolve":
            return redirect("/inbox", status=303)
        return redirect(f"/inbox/threads/{conversation_id}", status=303)

    @bp.get("/fans/<contact_id:int>")
    async def by_fan(request: Request, contact_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        conv = await inbox.db.run(sql.conversation_of_contact, contact_id)
        if conv is None:
            raise NotFound("no such fan")
        await require_readable(inbox, session, conv)
        return redirect(f"/inbox/threads/{conv}", status=303)


def _broadcast_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    """Broadcast progress for everyone; the pause / resume / cancel forms for admins."""

    async def listing(session: Any, error: str = "", status: int = 200) -> HTTPResponse:
        items = await broadcasts.list_progress(inbox.broadcasts())
        return page("broadcasts.html", status, session=session, items=items, error=error,
                    running=any(p.running for p in items))  # fmt: skip

    @bp.get("/broadcasts")
    async def broadcasts_page(request: Request) -> HTTPResponse:
        return await listing(await authorise(request, inbox))

    @bp.post("/broadcasts/<broadcast_id:int>/<action:(pause|resume|cancel|send-winner)>")
    async def control(request: Request, broadcast_id: int, action: str) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, admin=True, csrf=form.get("csrf") or "")
        try:
            await control_broadcast(inbox, broadcast_id, action, session.agent.id)
        except Conflict as exc:
            return await listing(session, str(exc), exc.status)
        return redirect("/inbox/broadcasts", status=303)


def _login_page(page: Any, inbox: Inbox, error: str = "", status: int = 200) -> HTTPResponse:
    token = secrets.token_urlsafe(24)  # double-submit: the form and a cookie must agree
    response = page("login.html", status, csrf=token, error=error)
    response.add_cookie(LOGIN_CSRF, token, path="/inbox", httponly=True, samesite="Strict",
                        secure=inbox.secure_cookies, max_age=3600)  # fmt: skip
    return response


async def _thread(
    page: Any, inbox: Inbox, session: Any, conversation_id: int, error: str = "", status: int = 200
) -> HTTPResponse:
    thread = await threads.load_thread(inbox.db, conversation_id)
    agents = [a for a in await inbox.auth.list_agents() if a.active]
    first = thread.profile.fields.get("first_name")
    canned = [(c.title, c.for_fan(first)) for c in inbox.config.canned]
    return page("thread.html", status, session=session, thread=thread, agents=agents,
                canned=canned, error=error, intents=known_intents(inbox),
                labels=await thread_labels(inbox, thread),
                faq=await thread_faq(inbox, thread) if session.agent.is_admin else None)  # fmt: skip


def _form_data(action: str, form: Any) -> dict[str, Any]:
    if action in ("reply", "notes"):
        return {"body": form.get("body") or ""}
    if action == "tags":
        add = [t for t in (form.get("add") or "").replace(",", " ").split() if t]
        return {"add": add, "remove": form.getlist("remove") or []}
    if action == "snooze":
        return {"minutes": form.get("minutes") or "0"}
    if action == "reassign":
        to = form.get("agent_id") or ""
        return {"agent_id": int(to) if to.isdigit() else None}
    return {}
