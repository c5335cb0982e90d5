"""The topics, teach and suggestions API over HTTP: roles, CSRF, clear 400s, and a reply to a
topic reaching every fan exactly once through the real sender and the local Twilio server."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sanic import Sanic

from bot.channels.twilio_gateway import TwilioGateway
from bot.cli import DEMO_FILES
from bot.content import load_content
from bot.domain import TurnRecord
from bot.inbox import LiveHub, inbox_blueprints
from bot.messages import InboundSms, OutboundSms
from bot.outbound import OutboundSender
from bot.settings import Settings
from bot.storage import Store
from bot.storage.tables import contacts, messages
from bot.teach.teacher import Teacher
from bot.testing import serve_in_process
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioServer
from bot.topics.sweep import TopicSweep
from bot.topics.vectors import NgramVectors

from .conftest import US, Team, escalate, logged_in

ROOT = Path(__file__).resolve().parents[2]
DENVER = ["is the denver show still on tonight?", "denver show tonight still on??",
          "is tonight's denver show still on with the storm", "is the denver show on tonight"]  # fmt: skip
REFUND = ["how do i get a refund for my vip upgrade", "refund for the vip upgrade please",
          "can i get a vip upgrade refund"]  # fmt: skip
_apps = itertools.count()
ACK = "A real person will text you back."  # the bot's answer in `escalate`


def open_zone(at: datetime | None = None) -> str:
    """A time zone where it is about noon now: the reply's waking hours are open there."""
    hour = (at or datetime.now(UTC)).hour
    offset = (12 - hour + 12) % 24 - 12  # -12..11 hours from UTC
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-3 is UTC+3


def demo_copy(target: Path) -> Path:
    """The demo fan line in a scratch folder: teaching writes its content files, not the repo's."""
    for name in DEMO_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, target / name)
    return target


@dataclass
class Topics:
    url: str
    store: Store
    twilio: TwilioServer
    sweep: TopicSweep
    project: Path
    woken: list[int]


@pytest.fixture
async def topics_server(store: Store, team: Team, tmp_path: Path) -> AsyncIterator[Topics]:
    """The inbox with a topic sweep, a teacher over a demo copy, and the real outbox sender
    sending to the local Twilio server, woken by the API's `notify_outbox`."""
    project = demo_copy(tmp_path / "fanline")
    settings = Settings(project_dir=project, database_url=store.db.url, secret_key=b"test-secret")
    sweep = TopicSweep(store.db, NgramVectors)
    teacher = Teacher(project, autotrain=False)  # files only: training is the teach tests' part
    runtime = SimpleNamespace(content=load_content(project))
    twilio = TwilioServer(seed=3)
    woken: list[int] = []
    async with serve_in_process(twilio.app) as twilio_url:
        gateway = TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=US,
                                base_url=twilio_url)  # fmt: skip
        sender, stop = OutboundSender(store, gateway, rate_per_second=200), asyncio.Event()

        def wake() -> None:
            woken.append(1)
            sender.notify()

        app = Sanic(f"inbox_topics_{next(_apps)}")
        for bp in inbox_blueprints(db=store.db, settings=settings, hub=LiveHub(),
                                   notify_outbox=wake, runtime=lambda: runtime,
                                   sweep=lambda: sweep, teacher=lambda: teacher):  # fmt: skip
            app.blueprint(bp)
        task = asyncio.create_task(sender.run(stop))
        try:
            async with serve_in_process(app) as url:
                yield Topics(url, store, twilio, sweep, project, woken)
        finally:
            stop.set()
            await task
            await gateway.aclose()
            await twilio.aclose()


async def seed(t: Topics, texts: list[str], start: int = 0) -> list[int]:
    """Fans (named, in a zone where it is day) whose texts reached a person, then grouped."""
    phones = [f"+1415777{start + i:04d}" for i in range(len(texts))]
    conversations = [
        await escalate(t.store, p, body) for p, body in zip(phones, texts, strict=True)
    ]
    await name_fans(t.store, {p: f"Fan{start + i}" for i, p in enumerate(phones)})
    await t.sweep.run_once()
    return conversations


async def bot_turn(store: Store, phone: str, body: str) -> int:
    """A fan's text the bot answered on its own (no hand-off): its message id."""
    rec = await store.record_inbound(InboundSms(f"SM{uuid.uuid4().hex}", phone, US, body))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(TurnRecord(
        rec.contact.id, ctx.conversation_id, rec.message_id,
        events=[("intent", {"intent": "ask_tour_dates", "confidence": 0.97})],
        replies=[OutboundSms(phone, "Tour dates: fanline.example/tour", sender=US)]))  # fmt: skip
    return rec.message_id


async def name_fans(store: Store, names: dict[str, str]) -> None:
    zone = open_zone()

    def update(conn: Any) -> None:
        for phone, name in names.items():
            conn.execute(contacts.update().where(contacts.c.phone == phone)
                         .values(profile={"first_name": name, "timezone": zone}))  # fmt: skip

    await store.db.run(update)


async def topic_of(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    listed = (await client.get("/api/v1/topics")).json()
    for item in listed["items"]:
        detail = (await client.get(f"/api/v1/topics/{item['id']}")).json()
        if any(x["body"] == text for x in detail["texts"]):
            return detail
    raise AssertionError(f"no topic holds {text!r}")


async def test_topics_are_listed_by_size_and_by_wait_with_counts(topics_server: Topics) -> None:
    await seed(topics_server, DENVER + REFUND)
    async with httpx.AsyncClient(base_url=topics_server.url, timeout=10) as anon:
        assert (await anon.get("/api/v1/topics")).status_code == 401
    async with logged_in(topics_server.url, "ana") as (client, _):
        listed = (await client.get("/api/v1/topics")).json()
        assert listed["counts"]["waiting_texts"] == len(DENVER + REFUND)
        assert listed["counts"]["open_topics"] == len(listed["items"]) >= 2
        sizes = [t["size"] for t in listed["items"]]
        assert sizes == sorted(sizes, reverse=True)
        by_wait = (await client.get("/api/v1/topics?order=wait")).json()
        assert {t["id"] for t in by_wait["items"]} == {t["id"] for t in listed["items"]}
        denver, refund = await topic_of(client, DENVER[0]), await topic_of(client, REFUND[0])
        assert denver["topic"]["id"] != refund["topic"]["id"]
        assert {x["body"] for x in denver["texts"]} >= set(DENVER)
        assert {x["body"] for x in refund["texts"]} >= set(REFUND)
        assert denver["topic"]["fans"] == len(denver["texts"]) and denver["topic"]["examples"]
        for bad, message in (("status=everything", "status must be one of"),
                             ("order=newest", "order must be one of"),
                             ("limit=lots", "`limit` must be an integer")):  # fmt: skip
            r = await client.get(f"/api/v1/topics?{bad}")
            assert r.status_code == 400 and message in r.json()["error"], bad
        assert (await client.get("/api/v1/topics/999999")).status_code == 404


async def test_writes_need_the_csrf_token_and_bad_input_is_a_clear_400(
    topics_server: Topics,
) -> None:
    await seed(topics_server, DENVER + REFUND)
    async with logged_in(topics_server.url, "ana") as (client, csrf):
        denver = await topic_of(client, DENVER[0])
        tid = denver["topic"]["id"]
        reply = {"body": "Yes, the show is on!", "request_key": "k-csrf-1"}
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            r = await client.post(f"/api/v1/topics/{tid}/reply", json=reply, headers=headers)
            assert r.status_code == 403
        assert await agent_texts(topics_server.store) == 0 and topics_server.woken == []
        h = {"X-CSRF-Token": csrf}
        cases = [
            ("reply", {"body": "  "}, "`body` must be the reply's text"),
            ("reply", {"body": "hi", "auto_minutes": "soon"}, "`auto_minutes` must be a whole"),
            ("reply", {"body": "hi", "auto_minutes": 99_999}, "`auto_minutes` is between"),
            ("reply", {"body": "hi {first_name"}, "placeholder"),
            ("reply", {"body": "Hi {frist_name}!"}, "did you mean {first_name}?"),
            ("move", {"message_ids": "all"}, "`message_ids` must be a list"),
            ("move", {"message_ids": [1], "to": "new"}, "`to` must be a topic id"),
            ("merge", {"into": tid}, "cannot be merged into itself"),
            ("merge", {}, "`into` must be the id"),
            ("rename", {"label": ""}, "`label` must be a non-empty string"),
            ("rename", {"label": "x" * 121}, "at most 120 characters"),
            ("auto", {}, "give `minutes`, `until` or `off`"),
            ("auto", {"until": "tomorrow"}, "ISO 8601"),
            ("auto", {"minutes": 30}, "reply to the topic first"),  # 409: nothing to repeat yet
        ]
        for action, body, message in cases:
            r = await client.post(f"/api/v1/topics/{tid}/{action}", json=body, headers=h)
            assert r.status_code in (400, 409) and message in r.json()["error"], (action, body)
        r = await client.post(f"/api/v1/topics/{tid}/reply", content="body=hi", headers=h)
        assert r.status_code == 415  # JSON only: a cross-site form cannot post here
        r = await client.post("/api/v1/topics/999999/reply", json=reply, headers=h)
        assert r.status_code == 404
        r = await client.post(f"/api/v1/topics/{tid}/frobnicate", json={}, headers=h)
        assert r.status_code == 404
        r = await client.post("/api/v1/messages/1/label", json={"verdict": "maybe"}, headers=h)
        assert r.status_code == 400 and "`verdict` must be" in r.json()["error"]
        r = await client.post("/api/v1/messages/1/label", json={"verdict": "intent"}, headers=h)
        assert r.status_code == 400 and "`intent` names the intent" in r.json()["error"]
        assert (await client.get("/api/v1/suggestions?status=odd")).status_code == 400
        assert await agent_texts(topics_server.store) == 0


async def test_agents_reshape_topics_admins_regroup_and_teach(topics_server: Topics) -> None:
    await seed(topics_server, DENVER + REFUND)
    async with (
        logged_in(topics_server.url, "ana") as (ana, ana_csrf),
        logged_in(topics_server.url, "root") as (admin, admin_csrf),
    ):
        h = {"X-CSRF-Token": ana_csrf}
        denver = await topic_of(ana, DENVER[0])
        refund = await topic_of(ana, REFUND[0])
        tid, rid = denver["topic"]["id"], refund["topic"]["id"]
        stray = next(x for x in denver["texts"] if x["body"] == DENVER[-1])
        split = await ana.post(f"/api/v1/topics/{tid}/move",
                               json={"message_ids": [stray["message_id"]], "to": None}, headers=h)  # fmt: skip
        assert split.status_code == 200, split.text
        new = split.json()["to"]
        assert new not in (tid, rid) and split.json()["moved"] == 1
        moved = (await ana.get(f"/api/v1/topics/{new}")).json()
        assert [x["body"] for x in moved["texts"]] == [DENVER[-1]]
        r = await ana.post(f"/api/v1/topics/{new}/merge", json={"into": tid}, headers=h)
        assert r.status_code == 200 and r.json()["into"] == tid
        assert (await ana.get(f"/api/v1/topics/{new}")).json()["topic"]["status"] == "merged"
        r = await ana.post(f"/api/v1/topics/{tid}/rename", json={"label": " Denver: on? "},
                           headers=h)  # fmt: skip
        assert r.status_code == 200
        after = (await ana.get(f"/api/v1/topics/{tid}")).json()
        assert after["topic"]["label"] == "Denver: on?"
        assert {x["body"] for x in after["texts"]} >= set(DENVER)

        # admins only: re-group, teach, decide suggestions
        for path, body in (("/api/v1/topics/regroup", {}),
                           ("/api/v1/teach", {"topic_id": rid, "intent": "ask_vip_refund",
                                              "response": "Refunds: fanline.example/refund"}),
                           ("/api/v1/suggestions/1/accept", {})):  # fmt: skip
            assert (await ana.post(path, json=body, headers=h)).status_code == 403, path
        ah = {"X-CSRF-Token": admin_csrf}
        assert (await admin.post("/api/v1/topics/regroup", json={})).status_code == 403  # CSRF
        r = await admin.post("/api/v1/topics/regroup", json={}, headers=ah)
        assert r.status_code == 200 and r.json()["ok"] is True
        r = await admin.post("/api/v1/teach", json={"intent": "ask_x", "response": "y"}, headers=ah)
        assert r.status_code == 400 and "exactly one of `topic_id`" in r.json()["error"]
        r = await admin.post("/api/v1/teach", json={"topic_id": rid, "intent": "Bad Name!",
                                                    "response": "y"}, headers=ah)  # fmt: skip
        assert r.status_code == 400 and "intent name" in r.json()["error"]
        rid = (await topic_of(admin, REFUND[0]))["topic"]["id"]  # re-grouping may renumber
        taught = await admin.post("/api/v1/teach", headers=ah, json={
            "topic_id": rid, "intent": "ask_vip_refund",
            "response": "VIP upgrade refunds: fanline.example/refund"})  # fmt: skip
        assert taught.status_code == 200, taught.text
        body = taught.json()
        assert body["intent"] == "ask_vip_refund" and body["retraining"] is False
        assert set(REFUND) <= set(body["examples"]) and "data/taught.yml" in body["files"]
        written = (topics_server.project / "data" / "taught.yml").read_text()
        assert "ask_vip_refund" in written and REFUND[0] in written


async def test_labels_become_suggestions_that_admins_accept(topics_server: Topics) -> None:
    await seed(topics_server, ["my presale code 4411 does not work, email me at a@b.example"])
    async with (
        logged_in(topics_server.url, "ana") as (ana, ana_csrf),
        logged_in(topics_server.url, "root") as (admin, admin_csrf),
    ):
        intents = (await ana.get("/api/v1/intents")).json()["intents"]
        assert "check_presale_code" in intents and "ask_tour_dates" in intents
        [text] = (await topic_of(ana, "my presale code 4411 does not work, email me at "
                                       "a@b.example"))["texts"]  # fmt: skip
        h = {"X-CSRF-Token": ana_csrf}
        label = f"/api/v1/messages/{text['message_id']}/label"
        assert (await ana.post(label, json={"verdict": "handover"})).status_code == 403
        r = await ana.post(label, json={"verdict": "intent", "intent": "check_presale_code"},
                           headers=h)  # fmt: skip
        assert r.status_code == 200 and r.json()["label_id"] > 0
        assert (await ana.post("/api/v1/messages/999999/label", headers=h,
                               json={"verdict": "handover"})).status_code == 404  # fmt: skip
        # a turn the bot handled alone never reached the inbox: agents cannot label (read) it
        quiet = await bot_turn(topics_server.store, "+14157779999", "when is the next tour")
        for_ana = await ana.post(f"/api/v1/messages/{quiet}/label", headers=h,
                                 json={"verdict": "intent", "intent": "ask_tour_dates"})  # fmt: skip
        assert for_ana.status_code == 404
        [s] = (await ana.get("/api/v1/suggestions")).json()["items"]
        assert (s["verdict"], s["intent"], s["status"]) == ("intent", "check_presale_code", "new")
        assert "a@b.example" not in s["text"] and "presale code" in s["text"]  # scrubbed
        ah = {"X-CSRF-Token": admin_csrf}
        r = await admin.post(f"/api/v1/suggestions/{s['id']}/accept", json={}, headers=ah)
        assert r.status_code == 200 and r.json()["suggestion"]["status"] == "accepted"
        r = await admin.post(f"/api/v1/suggestions/{s['id']}/reject", json={}, headers=ah)
        assert r.status_code == 409  # decided already
        assert (await ana.get("/api/v1/suggestions")).json()["items"] == []
        r = await admin.post(f"/api/v1/messages/{quiet}/label", headers=ah,
                             json={"verdict": "handover"})  # fmt: skip
        assert r.status_code == 200  # admins read every conversation
        written = (topics_server.project / "data" / "taught.yml").read_text()
        assert "check_presale_code" in written and s["text"] in written


async def test_a_reply_to_a_topic_texts_every_fan_exactly_once(topics_server: Topics) -> None:
    conversations = await seed(topics_server, DENVER)
    async with (
        logged_in(topics_server.url, "ana") as (ana, ana_csrf),
        logged_in(topics_server.url, "ben") as (ben, ben_csrf),
    ):
        denver = await topic_of(ana, DENVER[0])
        tid, fans = denver["topic"]["id"], denver["topic"]["fans"]
        assert fans == len(DENVER)
        reply = {"body": "Hi {first_name}! Denver is on, doors at 7.", "request_key": "denver-1"}
        # a double submit (same key) and another agent's reply at the same moment
        first, again, other = await asyncio.gather(
            ana.post(f"/api/v1/topics/{tid}/reply", json=reply, headers={"X-CSRF-Token": ana_csrf}),
            ana.post(f"/api/v1/topics/{tid}/reply", json=reply, headers={"X-CSRF-Token": ana_csrf}),
            ben.post(f"/api/v1/topics/{tid}/reply", headers={"X-CSRF-Token": ben_csrf},
                     json={"body": "Hi {first_name}, yes!", "request_key": "denver-ben"}),
        )  # fmt: skip
        assert {first.status_code, again.status_code, other.status_code} == {200}
        assert first.json()["reply_id"] == again.json()["reply_id"]
        # the fans are split between the two replies, never shared
        assert first.json()["fans"] + other.json()["fans"] == fans
        # each fan had the bot's "a real person will text you back" first, then the answer
        sent = [m for m in await topics_server.twilio.wait_accepted(2 * fans)
                if m["body"] != ACK]  # fmt: skip
        assert sorted(m["to"] for m in sent) == sorted({m["to"] for m in sent})  # once each
        assert len(sent) == fans and all(m["body"].startswith("Hi Fan") for m in sent)
        assert topics_server.woken  # the API woke the sender after commit
        thread = (await ana.get(f"/api/v1/conversations/{conversations[0]}")).json()
        assert thread["status"] == "resolved"  # back to the bot
        assert [e["kind"] for e in thread["timeline"] if e["kind"] in ("fan", "agent")][-1] == (
            "agent"
        )
        # answered: a late retry of the first request sends nothing more
        late = await ana.post(f"/api/v1/topics/{tid}/reply", json=reply,
                              headers={"X-CSRF-Token": ana_csrf})  # fmt: skip
        assert late.json()["reply_id"] == first.json()["reply_id"]
    await topics_server.sweep.run_once()
    assert (
        await agent_texts(topics_server.store) == fans
    )  # no second row for anyone, queued or sent
    assert len(topics_server.twilio.accepted()) == 2 * fans


async def agent_texts(store: Store) -> int:
    import sqlalchemy as sa

    m = messages.c
    return await store.db.run(lambda conn: conn.execute(
        sa.select(sa.func.count()).where(m.direction == "out", m.kind == "agent")).scalar())  # fmt: skip


async def test_the_pages_forms_work_without_javascript_and_a_double_submit_sends_once(
    topics_server: Topics,
) -> None:
    import re

    conversations = await seed(topics_server, REFUND)
    async with logged_in(topics_server.url, "ana") as (client, csrf):
        tid = (await topic_of(client, REFUND[0]))["topic"]["id"]
        html = (await client.get(f"/inbox/topics/{tid}")).text
        key = re.search(r'name="request_key" value="([^"]+)"', html)
        assert key and "&lt;" not in key.group(1)
        form = {"csrf": csrf, "request_key": key.group(1), "body": "Hi {first_name|there}! Done."}
        r = await client.post(f"/inbox/topics/{tid}/reply", data={**form, "csrf": "nope"})
        assert r.status_code == 403 and await agent_texts(topics_server.store) == 0
        first, second = await asyncio.gather(
            client.post(f"/inbox/topics/{tid}/reply", data=form),
            client.post(f"/inbox/topics/{tid}/reply", data=form),
        )
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]  # the same reply
        assert await agent_texts(topics_server.store) == len(REFUND)
        page = (await client.get(first.headers["location"])).text
        assert page.count("Hi {first_name|there}! Done.") == 1  # one reply sent, listed once
        assert 'id="auto-on"' in page
        r = await client.post(f"/inbox/topics/{tid}/auto", data={"csrf": csrf, "minutes": "30"})
        assert r.status_code == 303
        page = (await client.get(r.headers["location"])).text
        assert 'id="auto-off"' in page and 'id="auto-on"' not in page
        bad = await client.post(f"/inbox/topics/{tid}/move", data={"csrf": csrf})
        assert bad.status_code == 400 and "tick the texts to move first" in bad.text
        queue = (await client.get("/inbox/")).text
        assert 'id="topics-tab"' in queue
        thread = (await client.get(f"/inbox/threads/{conversations[0]}")).text
        assert "Label this turn" in thread and "Make this an FAQ" not in thread  # agents
    async with logged_in(topics_server.url, "root") as (admin, admin_csrf):
        thread = (await admin.get(f"/inbox/threads/{conversations[0]}")).text
        assert "Make this an FAQ" in thread
        one = await admin.post("/inbox/teach", data={
            "csrf": admin_csrf, "conversation_id": str(conversations[0]),
            "intent": "ask_vip_refund", "response": "Refunds: fanline.example/r"})  # fmt: skip
        assert one.status_code == 400 and "at least 2 distinct example texts" in one.text
        two = await admin.post("/inbox/teach", data={
            "csrf": admin_csrf, "conversation_id": str(conversations[0]),
            "intent": "ask_vip_refund", "response": "Refunds: fanline.example/r",
            "examples": [REFUND[0], "my number is 303 555 0100, vip refund?"]})  # fmt: skip
        assert two.status_code == 200 and "ask_vip_refund" in two.text
        written = (topics_server.project / "data" / "taught.yml").read_text()
        assert REFUND[0] in written and "303 555 0100" not in written  # scrubbed


def test_the_openapi_document_describes_the_topic_routes() -> None:
    from bot.inbox.openapi import openapi_document
    from bot.inbox.topics import TOPIC_ACTIONS

    paths = openapi_document()["paths"]
    assert {p for p in paths if p.startswith("/api/v1/topics/{topic_id}/")} == {
        f"/api/v1/topics/{{topic_id}}/{a}" for a in TOPIC_ACTIONS
    }
    reads = [
        "/api/v1/topics",
        "/api/v1/topics/{topic_id}",
        "/api/v1/suggestions",
        "/api/v1/intents",
    ]
    writes = ["/api/v1/topics/regroup", "/api/v1/teach", "/api/v1/messages/{message_id}/label",
              "/api/v1/suggestions/{label_id}/accept", "/api/v1/suggestions/{label_id}/reject",
              *(f"/api/v1/topics/{{topic_id}}/{a}" for a in TOPIC_ACTIONS)]  # fmt: skip
    assert all("get" in paths[p] for p in reads)
    for p in writes:
        names = [x["name"] for x in paths[p]["post"]["parameters"]]
        assert "X-CSRF-Token" in names, p
