"""The "Bot answers" API and pages over HTTP: roles, CSRF, clear 400s; a correction reaches each
fan exactly once through the real sender and the local Twilio server under double submits;
marking right, moving out, teaching (admins)."""

from __future__ import annotations

import asyncio
import re
import uuid

import sqlalchemy as sa

from bot.domain import TurnRecord
from bot.messages import InboundSms, OutboundSms
from bot.storage import Store
from bot.storage.tables import messages
from bot.topics.review_sweep import AnswerSweep
from bot.topics.vectors import NgramVectors

from .conftest import US, logged_in
from .test_topics_api import Topics, name_fans, topics_server  # noqa: F401  (fixture)

MEET = ["will the meet and greet still happen", "is the meet and greet still happening tonight?",
        "meet and greet still on after the delay??", "will there still be a meet and greet"]  # fmt: skip
BOT_SAID = "Meet & greet passes: fanline.example/mg"


async def answered(t: Topics, texts: list[str], start: int = 0) -> list[str]:
    """Fans (named, in a zone where it is day) whose replies to broadcast 5 the bot answered
    with utter_meet_greet, then the answer sweep: their phones."""
    phones = [f"+1415888{start + i:04d}" for i in range(len(texts))]
    for phone, body in zip(phones, texts, strict=True):
        rec = await t.store.record_inbound(InboundSms(f"SM{uuid.uuid4().hex}", phone, US, body))
        ctx = await t.store.load_turn(rec.contact.id)
        await t.store.finish_turn(TurnRecord(
            rec.contact.id, ctx.conversation_id, rec.message_id, broadcast_id=5,
            events=[("broadcast_reply", {"broadcast_id": 5}),
                    ("intent", {"intent": "ask_meet_greet", "confidence": 0.96}),
                    ("utter", {"response": "utter_meet_greet"})],
            replies=[OutboundSms(phone, BOT_SAID, sender=US)]))  # fmt: skip
    await name_fans(t.store, {p: f"Fan{start + i}" for i, p in enumerate(phones)})
    await AnswerSweep(t.store.db, NgramVectors).run_once()  # type: ignore[arg-type]
    return phones


async def agent_texts(store: Store) -> int:
    m = messages.c
    return await store.db.run(lambda conn: conn.execute(
        sa.select(sa.func.count()).where(m.direction == "out", m.kind == "agent")).scalar())  # fmt: skip


async def test_a_correction_over_the_api_texts_each_fan_once(
    topics_server: Topics,  # noqa: F811
) -> None:
    await answered(topics_server, MEET)
    async with logged_in(topics_server.url, "ana") as (ana, csrf):
        listed = (await ana.get("/api/v1/answers")).json()
        assert listed["counts"] == {"open_groups": 1, "texts": 4}
        group = listed["items"][0]
        assert group["headline"].startswith("4 fans got utter_meet_greet for '")
        assert group["answer"] == BOT_SAID and group["broadcast_id"] == 5
        gid = group["id"]
        body = {"body": "Sorry {first_name}, the meet & greet moved to 6pm.", "request_key": "mg-1"}
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            r = await ana.post(f"/api/v1/answers/{gid}/correct", json=body, headers=headers)
            assert r.status_code == 403
        h = {"X-CSRF-Token": csrf}
        for action, data, message in (
            ("correct", {"body": " "}, "`body` must be the follow-up text"),
            ("correct", {"body": "hi {first_name"}, "placeholder"),
            ("move", {"message_ids": "all"}, "`message_ids` must be a list"),
            ("nothing", {}, "no such action"),
        ):  # fmt: skip
            r = await ana.post(f"/api/v1/answers/{gid}/{action}", json=data, headers=h)
            assert r.status_code in (400, 404) and message in r.json()["error"], action
        assert (await ana.post(f"/api/v1/answers/{gid}/teach", json={"intent": "ask_mg"},
                               headers=h)).status_code == 403  # fmt: skip
        first, again = await asyncio.gather(
            ana.post(f"/api/v1/answers/{gid}/correct", json=body, headers=h),
            ana.post(f"/api/v1/answers/{gid}/correct", json=body, headers=h),
        )
        assert first.status_code == again.status_code == 200
        assert first.json()["correction_id"] == again.json()["correction_id"]
        sent = [m for m in await topics_server.twilio.wait_accepted(2 * len(MEET))
                if m["body"] != BOT_SAID]  # fmt: skip
        assert len(sent) == len(MEET) == len({m["to"] for m in sent})  # once each
        assert all(m["body"].startswith("Sorry Fan") for m in sent) and topics_server.woken
        detail = (await ana.get(f"/api/v1/answers/{gid}")).json()
        assert detail["group"]["status"] == "corrected" and detail["corrections"][0]["fans"] == 4
    assert await agent_texts(topics_server.store) == len(MEET)


async def test_the_pages_mark_right_move_out_and_teach(
    topics_server: Topics,  # noqa: F811
) -> None:
    await answered(topics_server, MEET)
    async with logged_in(topics_server.url, "ana") as (ana, csrf):
        page = (await ana.get("/inbox/answers")).text
        gid = int(re.search(r'data-group="(\d+)"', page).group(1))  # type: ignore[union-attr]
        assert "4 fans got utter_meet_greet" in page and BOT_SAID.replace("&", "&amp;") in page
        html = (await ana.get(f"/inbox/answers/{gid}")).text
        assert 'id="correct-form"' in html and 'id="teach-form"' not in html  # agents
        one = int(re.search(r'name="message_ids" value="(\d+)"', html).group(1))  # type: ignore[union-attr]
        bad = await ana.post(f"/inbox/answers/{gid}/right", data={"csrf": "nope"})
        assert bad.status_code == 403
        split = await ana.post(f"/inbox/answers/{gid}/split",
                               data={"csrf": csrf, "message_ids": str(one)})  # fmt: skip
        assert split.status_code == 303
        new = int(split.headers["location"].rsplit("/", 1)[1])
        assert new != gid
        right = await ana.post(f"/inbox/answers/{new}/right", data={"csrf": csrf})
        assert right.status_code == 303
        listed = (await ana.get("/api/v1/answers?status=right")).json()
        assert [(g["id"], g["size"]) for g in listed["items"]] == [(new, 1)]
        denied = await ana.post(f"/inbox/answers/{gid}/teach", data={"csrf": csrf,
                                "intent": "ask_mg_time", "response": "6pm"})  # fmt: skip
        assert denied.status_code == 403
    async with logged_in(topics_server.url, "root") as (admin, admin_csrf):
        html = (await admin.get(f"/inbox/answers/{gid}")).text
        assert 'id="teach-form"' in html
        taught = await admin.post(f"/inbox/answers/{gid}/teach", data={
            "csrf": admin_csrf, "intent": "ask_meet_greet_time",
            "response": "The meet and greet starts at 6pm.",
            "examples": [t for t in MEET if t != MEET[0]]})  # fmt: skip
        assert taught.status_code == 303
        written = (topics_server.project / "data" / "taught.yml").read_text()
        assert "ask_meet_greet_time" in written and MEET[1] in written
        detail = (await admin.get(f"/api/v1/answers/{gid}")).json()
        assert detail["group"]["status"] == "taught"
        assert detail["group"]["taught_intent"] == "ask_meet_greet_time"
