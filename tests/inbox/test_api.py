"""The JSON API and the pages over HTTP: auth rules, CSRF, roles, live events, the webhook."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import sqlalchemy as sa
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, empty

from bot.inbox import LiveHub
from bot.inbox.auth import COOKIE
from bot.inbox.live import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook, verify
from bot.inbox.openapi import openapi_document
from bot.pipeline import TurnOutcome
from bot.storage import Store
from bot.storage.tables import conversations
from bot.testing import serve_in_process

from .conftest import PASSWORD, Server, escalate, fan, fan_texts_again, logged_in


async def test_no_session_is_401_everywhere_but_login_and_the_document(
    server: Server, store: Store
) -> None:
    cid = await escalate(store, fan(1))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        for method, path in (("GET", "/api/v1/queue"), ("GET", f"/api/v1/conversations/{cid}"),
                             ("POST", f"/api/v1/conversations/{cid}/claim"),
                             ("GET", "/api/v1/events"), ("GET", "/api/v1/agents")):  # fmt: skip
            assert (await anon.request(method, path)).status_code == 401, path
        assert (await anon.get("/api/v1/openapi.json")).status_code == 200
        page = await anon.get("/inbox/")
        assert page.status_code == 303 and page.headers["location"] == "/inbox/login"


async def test_login_sets_an_http_only_cookie_and_writes_need_the_csrf_token(
    server: Server, store: Store
) -> None:
    cid = await escalate(store, fan(1))
    async with logged_in(server.url, "ana") as (client, csrf):
        cookie = client.cookies.jar._cookies  # type: ignore[attr-defined]
        [raw] = [
            c for d in cookie.values() for p in d.values() for c in p.values() if c.name == COOKIE
        ]
        assert raw.has_nonstandard_attr("HttpOnly")
        queue = (await client.get("/api/v1/queue")).json()
        assert [i["conversation_id"] for i in queue["items"]] == [cid]
        claim = f"/api/v1/conversations/{cid}/claim"
        assert (await client.post(claim)).status_code == 403
        assert (await client.post(claim, headers={"X-CSRF-Token": "nope"})).status_code == 403
        assert (await client.get("/api/v1/queue?view=mine")).json()[
            "items"
        ] == []  # nothing changed
        assert (await client.post(claim, headers={"X-CSRF-Token": csrf})).status_code == 200
        mine = (await client.get("/api/v1/queue?view=mine")).json()
        assert [i["conversation_id"] for i in mine["items"]] == [cid]


async def test_an_agent_cannot_do_admin_things(server: Server) -> None:
    async with logged_in(server.url, "ana") as (client, csrf):
        h = {"X-CSRF-Token": csrf}
        new = {"username": "cleo", "password": PASSWORD}
        assert (await client.post("/api/v1/agents", json=new, headers=h)).status_code == 403
        assert (await client.post("/api/v1/agents/ben/disable", headers=h)).status_code == 403
    async with logged_in(server.url, "root") as (admin, admin_csrf):
        h = {"X-CSRF-Token": admin_csrf}
        assert (await admin.post("/api/v1/agents", json=new)).status_code == 403  # CSRF first
        created = await admin.post("/api/v1/agents", json=new, headers=h)
        assert created.status_code == 201 and created.json()["username"] == "cleo"
        assert (await admin.post("/api/v1/agents/ben/disable", headers=h)).json()["active"] is False


async def test_reply_over_the_api_wakes_the_sender_and_conflicts_are_409(
    server: Server, store: Store
) -> None:
    cid = await escalate(store, fan(1))
    async with (
        logged_in(server.url, "ana") as (ana, ana_csrf),
        logged_in(server.url, "ben") as (ben, ben_csrf),
    ):
        r = await ana.post(f"/api/v1/conversations/{cid}/reply", json={"body": "Hi, Ana here"},
                           headers={"X-CSRF-Token": ana_csrf})  # fmt: skip
        assert r.status_code == 200 and r.json()["segments"] == 1 and server.woken == [1]
        r = await ben.post(f"/api/v1/conversations/{cid}/claim", headers={"X-CSRF-Token": ben_csrf})
        assert r.status_code == 409 and "error" in r.json()
        thread = (await ben.get(f"/api/v1/conversations/{cid}")).json()
        assert thread["assignee"]["name"] == "Ana"
        assert [e["kind"] for e in thread["timeline"] if e["kind"] != "marker"] == [
            "fan",
            "bot",
            "agent",
        ]


async def test_login_rate_limit_answers_429_with_retry_after(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for _ in range(5):
            r = await client.post(
                "/api/v1/session", json={"username": "ana", "password": "nope nope"}
            )
            assert r.status_code == 401
        r = await client.post("/api/v1/session", json={"username": "ana", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


async def test_escalations_arrive_live_over_server_sent_events(
    server: Server, store: Store
) -> None:
    async with (
        logged_in(server.url, "ana") as (client, _),
        client.stream("GET", "/api/v1/events") as stream,
    ):
        lines = stream.aiter_lines()
        assert await next_event(lines) == ("ready", {})
        cid = await escalate(store, fan(7))
        server.hub.publish_outcome(TurnOutcome(
            message_id=1, contact_id=5, held=False,
            events=(("escalated", {"reason": "complaint", "priority": "high"}),)))  # fmt: skip
        assert await next_event(lines) == (
            "escalation",
            {"contact_id": 5, "message_id": 1, "reason": "complaint", "priority": "high"},
        )
        server.hub.publish_outcome(TurnOutcome(message_id=2, contact_id=5, held=True))
        assert await next_event(lines) == (
            "message",
            {"contact_id": 5, "message_id": 2, "held": True},
        )
        assert cid > 0


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict]:
    event, data = "message", None
    async with asyncio.timeout(10):
        async for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return event, data
    raise AssertionError("stream ended")


async def test_escalation_webhook_is_signed() -> None:
    received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    receiver = Sanic(f"webhook_receiver_{uuid.uuid4().hex[:8]}")

    @receiver.post("/hook")
    async def hook(request: Request) -> HTTPResponse:
        received.put_nowait((dict(request.headers), request.body))
        return empty()

    async with serve_in_process(receiver) as url:
        hub = LiveHub(
            webhook=Webhook(f"{url}/hook", b"team-secret"), inbox_url="https://fans.example"
        )
        hub.publish_outcome(TurnOutcome(message_id=9, contact_id=3, events=(
            ("escalated", {"reason": "fan_asked", "priority": "normal"}),)))  # fmt: skip
        async with asyncio.timeout(10):
            headers, body = await received.get()
        await hub.aclose()
    payload = json.loads(body)
    assert payload == {"type": "escalation", "contact_id": 3, "message_id": 9, "reason": "fan_asked",
                       "priority": "normal", "url": "https://fans.example/inbox/fans/3"}  # fmt: skip
    stamp, sig = headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    assert verify(b"team-secret", stamp, body, sig)
    assert not verify(b"wrong-secret", stamp, body, sig)
    assert not verify(b"team-secret", stamp, body + b" ", sig)


async def test_the_html_login_form_needs_its_csrf_cookie(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        form = {"username": "ana", "password": PASSWORD, "csrf": "made-up"}
        assert (await client.post("/inbox/login", data=form)).status_code == 403
        page = await client.get("/inbox/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        r = await client.post("/inbox/login", data={**form, "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/inbox"
        queue = await client.get("/inbox/")
        assert queue.status_code == 200 and "Nothing here" in queue.text
        assert "script-src 'self'" in queue.headers["content-security-policy"]
        no_csrf = await client.post("/inbox/logout", data={})
        assert no_csrf.status_code == 403


async def test_pages_escape_what_fans_write(server: Server, store: Store) -> None:
    cid = await escalate(store, fan(1), "<img src=x onerror=alert(1)>")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        page = await client.get("/inbox/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        await client.post(
            "/inbox/login", data={"username": "ana", "password": PASSWORD, "csrf": token}
        )
        queue = (await client.get("/inbox/?view=all")).text
        thread = (await client.get(f"/inbox/threads/{cid}")).text
    for html in (queue, thread):
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Hi there, it&#39;s Ana." in thread  # the canned reply, filled in for this fan


def test_the_openapi_document_describes_every_route(server: Server) -> None:
    import re

    app = Sanic.get_app(server_name(server))
    routes = {(m, "/" + re.sub(r"<(\w+):[^>]+>", r"{\1}", r.path)) for r in app.router.routes
              for m in r.methods if r.path.startswith("api/v1")}  # fmt: skip
    documented = {(m.upper(), p) for p, ops in openapi_document()["paths"].items() for m in ops}
    generic = {(m, p) for m, p in routes if p.endswith("/{action}") or "{state}" in p}
    assert routes - generic <= documented
    assert {p for _, p in documented if "/conversations/{conversation_id}/" in p} == {
        f"/api/v1/conversations/{{conversation_id}}/{a}"
        for a in ("claim", "reply", "notes", "tags", "resolve", "snooze", "reassign")
    }


def server_name(server: Server) -> str:
    return next(name for name in Sanic._app_registry if name.startswith("inbox_api_"))


async def test_login_refuses_what_a_cross_site_page_can_send(server: Server) -> None:
    creds = json.dumps({"username": "ana", "password": PASSWORD})
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        plain = await client.post(
            "/api/v1/session", content=creds, headers={"Content-Type": "text/plain"}
        )  # no CORS preflight for text/plain: a login CSRF would look like this
        assert plain.status_code == 415 and COOKIE not in plain.cookies
        form = await client.post("/api/v1/session", data={"username": "ana", "password": PASSWORD})
        assert form.status_code == 415
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            r = await client.post("/api/v1/session", content=creds,
                                  headers={"Content-Type": "application/json", **headers})  # fmt: skip
            assert r.status_code == 403 and COOKIE not in r.cookies, headers
        same = await client.post(
            "/api/v1/session", content=creds,
            headers={"Content-Type": "application/json", "Origin": server.url,
                     "Sec-Fetch-Site": "same-origin"},
        )  # fmt: skip
        assert same.status_code == 200


async def test_agents_read_only_threads_that_reached_the_inbox(
    server: Server, store: Store
) -> None:
    escalated = await escalate(store, fan(1))
    await fan_texts_again(store, fan(2), "hi")  # a fan the bot answered: never handed over
    others = sa.select(conversations.c.id).where(conversations.c.id != escalated)
    quiet = await store.db.run(lambda c: c.execute(others).scalar_one())
    async with logged_in(server.url, "ana") as (client, _):
        assert (await client.get(f"/api/v1/conversations/{escalated}")).status_code == 200
        assert (await client.get(f"/api/v1/conversations/{quiet}")).status_code == 404
        assert (await client.get(f"/inbox/threads/{quiet}")).status_code == 404
        assert (await client.get(f"/inbox/threads/{quiet}/timeline")).status_code == 404
    async with logged_in(server.url, "root") as (admin, _):
        assert (await admin.get(f"/api/v1/conversations/{quiet}")).status_code == 200
