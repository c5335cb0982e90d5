"""Bot answers to review: broadcast replies the bot answered group by answer and meaning; a
correction texts each fan once under concurrent submits and retries, in waking hours, and a
STOP after queueing wins at send time; marking right, moving, teaching. Real store, both
databases."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audience.quiet_hours import QuietHours
from bot.domain import ConsentChange, TurnRecord
from bot.errors import Conflict, Forbidden
from bot.messages import InboundSms, OutboundSms
from bot.outbound import OutboundSender
from bot.storage import Store
from bot.storage.review_tables import answer_correction_fans, answer_texts
from bot.storage.tables import messages
from bot.teach import Teacher
from bot.topics import review
from bot.topics.review_sweep import AnswerSweep, answered
from bot.topics.vectors import NgramVectors
from tests.channels.conftest import LocalTwilio, twilio  # noqa: F401  (fixture)
from tests.teach.conftest import copy_demo

from .conftest import Team, escalate, fan

US = "+15005550006"
_sids = itertools.count(1)
MEET = [
    "will the meet and greet still happen",
    "is the meet and greet still happening tonight?",
    "meet and greet still on after the delay??",
    "are you still doing the meet & greet",
    "is meet and greet still happening",
    "will there still be a meet and greet",
]
PARKING = [
    "where do we park at the arena",
    "is there parking at the venue",
    "how much is parking at the stadium",
    "any parking near the venue?",
]


async def bot_answered(
    store: Store, phone: str, body: str, response: str = "utter_meet_greet", *,
    intent: str = "ask_meet_greet", broadcast_id: int | None = 7, also: tuple = (),
) -> int:  # fmt: skip
    """A fan's reply to a broadcast that the bot answered: the writes `finish_turn` makes."""
    rec = await store.record_inbound(InboundSms(f"SMrv{next(_sids):030d}", phone, US, body))
    ctx = await store.load_turn(rec.contact.id)
    events = [("intent", {"intent": intent, "confidence": 0.91}), *also,
              ("utter", {"response": response})]  # fmt: skip
    if broadcast_id is not None:
        events.insert(0, ("broadcast_reply", {"broadcast_id": broadcast_id}))
    await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id, events=events,
                   replies=[OutboundSms(phone, f"[{response}]", sender=US)],
                   broadcast_id=broadcast_id)
    )  # fmt: skip
    return rec.message_id


def sweep_for(store: Store) -> AnswerSweep:
    return AnswerSweep(store.db, NgramVectors)  # type: ignore[arg-type]


async def meet_and_parking(store: Store, start: int = 0) -> None:
    n = start
    for body in MEET:  # the bot answered the meet and greet right
        await bot_answered(store, fan(n), body)
        n += 1
    for body in PARKING:  # ... and parking questions with the accessibility FAQ
        await bot_answered(store, fan(n), body, "utter_accessibility", intent="ask_accessibility")
        n += 1


def correction_rows(store: Store, body: str | None = None) -> list[dict]:
    def q(conn):
        query = sa.select(messages).where(messages.c.kind == "agent").order_by(messages.c.id)
        if body is not None:
            query = query.where(messages.c.body == body)
        return [dict(r._mapping) for r in conn.execute(query)]

    return store.db.run_sync(q)


async def test_answered_replies_group_by_the_answer_and_by_meaning(store: Store) -> None:
    await meet_and_parking(store)
    n = 100
    # not for review: no broadcast, handed over, opted out by the turn, nothing said
    await bot_answered(store, fan(n), "will the meet and greet still happen", broadcast_id=None)
    await escalate(store, fan(n + 1), "meet and greet still on??")
    await bot_answered(store, fan(n + 2), "is the meet and greet still happening",
                       also=(("compliance", {"kind": "opt_out", "score": 0.9}),))  # fmt: skip
    result = await sweep_for(store).run_once()
    assert result.new == 10 and result.skipped == 1
    groups = await review.list_groups(store.db)
    by_response = Counter(g.response for g in groups)
    assert by_response == {"utter_meet_greet": 1, "utter_accessibility": 1}
    meet = next(g for g in groups if g.response == "utter_meet_greet")
    assert (meet.fans, meet.size, meet.intent, meet.broadcast_id) == (6, 6, "ask_meet_greet", 7)
    assert meet.answer == "[utter_meet_greet]" and meet.label
    assert meet.headline().startswith("6 fans got utter_meet_greet for '")
    # the same question answered another way never joins: the answer is part of the key
    await bot_answered(store, fan(200), MEET[0], "utter_shows", intent="ask_shows")
    # a later text meaning the same, answered the same way, joins the group
    await bot_answered(store, fan(201), "hey is the meet and greet still happening")
    later = await sweep_for(store).run_once()
    assert (later.new, later.joined, later.created) == (2, 1, 1)
    assert (await review.group(store.db, meet.id)).group.fans == 7
    assert (await sweep_for(store).run_once()).new == 0  # each text is taken once


def test_what_counts_as_an_answer() -> None:
    assert answered([("intent", {"intent": "a", "confidence": 0.5}),
                     ("utter", {"response": "utter_a"}), ("utter", {"response": "utter_b"}),
                     ("utter", {"response": "utter_a"})]) == review_sweep_answer(
        "utter_a + utter_b", "a", 0.5)  # fmt: skip
    assert answered([("utter", {"response": "utter_a"}), ("escalated", {})]) is None
    # HELP by the phrase model answered a question: for review; the keyword HELP is not
    by_model = {"kind": "help", "keyword": "", "score": 0.8}
    assert answered([("compliance", by_model), ("utter", {"response": "utter_help"})])
    keyword = {"kind": "help", "keyword": "help"}
    assert answered([("compliance", keyword), ("utter", {"response": "utter_help"})]) is None
    opt_out = {"kind": "opt_out", "keyword": "", "score": 0.9}
    assert answered([("compliance", opt_out), ("utter", {"response": "x"})]) is None
    assert answered([("intent", {"intent": "a"})]) is None


def review_sweep_answer(response: str, intent: str, confidence: float):  # noqa: ANN201
    from bot.topics.review_sweep import Answered

    return Answered(response, intent, confidence)


async def parking_group(store: Store) -> review.AnswerGroup:
    await sweep_for(store).run_once()
    return next(
        g for g in await review.list_groups(store.db) if g.response == "utter_accessibility"
    )


async def test_a_correction_texts_each_fan_once_under_concurrent_submits_and_retries(
    store: Store, team: Team
) -> None:
    await meet_and_parking(store)
    # one fan asked twice: one follow-up all the same
    await bot_answered(store, fan(6), "parking at the venue??", "utter_accessibility",
                       intent="ask_accessibility")  # fmt: skip
    group = await parking_group(store)
    assert (group.size, group.fans) == (5, 4)
    text = "Sorry {first_name|friend}, parking: lot B opens at 5."
    results = await asyncio.gather(
        review.correct(store.db, team.ana, group.id, text, request_key="k1", quiet=None),
        review.correct(store.db, team.ana, group.id, text, request_key="k1", quiet=None),
        review.correct(store.db, team.ben, group.id, text, request_key="k2", quiet=None),
        review.correct(store.db, team.ana, group.id, text, request_key="k1", quiet=None),
    )
    rows = correction_rows(store)
    assert Counter(r["contact_id"] for r in rows) == {c: 1 for c in {r["contact_id"] for r in rows}}
    assert len(rows) == 4
    assert {r["body"] for r in rows} == {"Sorry friend, parking: lot B opens at 5."}
    assert all(r["kind"] == "agent" and r["status"] == "queued" for r in rows)
    assert len({r.correction_id for r in results[:2]} | {results[3].correction_id}) == 1
    by_key = {results[0].correction_id: results[0].fans, results[2].correction_id: results[2].fans}
    assert sum(by_key.values()) == 4
    detail = await review.group(store.db, group.id)
    assert detail.group.status == "corrected" and all(t.corrected for t in detail.texts)
    # a retry later sends nothing more
    again = await review.correct(store.db, team.ana, group.id, text, request_key="k1", quiet=None)
    assert again.fans == results[0].fans and again.outbox_ids == ()
    assert len(correction_rows(store)) == 4

    def per_fan(conn):
        return conn.execute(
            sa.select(answer_correction_fans.c.contact_id, sa.func.count())
            .group_by(answer_correction_fans.c.contact_id)
        ).all()  # fmt: skip

    assert {n for _, n in store.db.run_sync(per_fan)} == {1}


async def test_a_stop_committed_after_the_correction_was_queued_wins_at_send_time(
    store: Store,
    team: Team,
    twilio: LocalTwilio,  # noqa: F811
) -> None:
    await meet_and_parking(store)
    group = await parking_group(store)
    # a fan who opted out before the correction gets no row at all
    before = (await review.group(store.db, group.id)).texts[0].contact_id
    await store.set_subscription(before, ConsentChange("opt_out", "sms_keyword"))
    result = await review.correct(store.db, team.ana, group.id, "Fix", quiet=None)
    assert result.fans == 3 and [s["contact_id"] for s in result.skipped] == [before]
    stopper = next(r["contact_id"] for r in correction_rows(store))
    await store.set_subscription(stopper, ConsentChange("opt_out", "sms_keyword"))
    gateway = twilio.gateway()
    try:
        await OutboundSender(store, gateway, rate_per_second=1000).drain()
    finally:
        await gateway.aclose()
    sent = Counter(m["to"] for m in twilio.server.accepted() if m["body"] == "Fix")
    assert len(sent) == 2 and set(sent.values()) == {1}
    stopped = [r["status"] for r in correction_rows(store) if r["contact_id"] == stopper]
    assert stopped == ["cancelled"]


async def test_a_correction_waits_for_the_fans_waking_hours(store: Store, team: Team) -> None:
    await meet_and_parking(store)
    group = await parking_group(store)
    night = datetime(2026, 8, 5, 4, 0, tzinfo=UTC)  # midnight in New York
    await review.correct(store.db, team.ana, group.id, "Fix", quiet=QuietHours(time(8), time(21)),
                         at=night)  # fmt: skip
    rows = correction_rows(store)
    assert rows and all(r["not_before"] is not None for r in rows)
    assert all(r["not_before"].replace(tzinfo=UTC) > night for r in rows)


async def test_marking_right_moving_out_and_teaching(
    store: Store, team: Team, tmp_path: Path
) -> None:
    await meet_and_parking(store)
    await sweep_for(store).run_once()
    groups = {g.response: g for g in await review.list_groups(store.db)}
    meet, parking = groups["utter_meet_greet"], groups["utter_accessibility"]
    # one parking text is right where it is: split off, marked right; the rest corrected
    moved = (await review.group(store.db, parking.id)).texts[-1]
    text = moved.message_id
    split = await review.move_texts(store.db, team.ana, [text], None)
    assert split != parking.id
    with pytest.raises(Conflict):  # into a group the bot answered differently: refused
        await review.move_texts(store.db, team.ana, [text], meet.id)
    assert await review.mark_right(store.db, team.ana, split) == 1
    assert (await review.group(store.db, parking.id)).group.size == 3
    assert {g.id for g in await review.list_groups(store.db, status="right")} == {split}
    # a later text meaning the meet and greet joins a group marked right as reviewed
    await review.mark_right(store.db, team.ana, meet.id)
    await bot_answered(store, fan(300), "is the meet and greet still happening tonight")
    await sweep_for(store).run_once()
    joined = (await review.group(store.db, meet.id)).texts
    assert len(joined) == 7 and all(t.reviewed for t in joined)
    # teaching from the parking group writes an FAQ from its texts (admins only)
    teacher = _teacher(tmp_path)
    project = teacher.project_dir
    with pytest.raises(Forbidden):
        await review.teach(store.db, teacher, team.ana, parking.id, intent="ask_parking",
                           response="Parking: lot B.")  # fmt: skip
    taught = await review.teach(store.db, teacher, team.admin, parking.id, intent="ask_parking",
                                response="Parking opens at 5 in lot B.")  # fmt: skip
    assert taught.new_faq and len(taught.examples) == 3
    data = (project / "data" / "taught.yml").read_text()
    assert "intent: ask_parking" in data
    assert all(body in data for body in set(PARKING) - {moved.body}) and moved.body not in data
    assert "Parking opens at 5 in lot B." in (project / "domain" / "taught.yml").read_text()
    assert (await review.group(store.db, parking.id)).group.status == "taught"


def _teacher(tmp_path: Path) -> Teacher:
    """The demo's content in a folder of its own; no retraining (the files are the test)."""
    return Teacher(copy_demo(tmp_path / "line"), autotrain=False)


async def test_a_fans_answered_texts_are_in_their_export_and_gone_with_erasure(
    store: Store, team: Team
) -> None:
    from bot.audience.privacy import erase_fan, export_fan

    await meet_and_parking(store)
    group = await parking_group(store)
    await review.correct(store.db, team.ana, group.id, "Hi {first_name|you}", quiet=None)
    data = (await export_fan(store, fan(6)))["bot_answers"]
    assert [t["body"] for t in data["texts"]] == [PARKING[0]] and "vector" not in data["texts"][0]
    assert data["corrections"][0]["template"] == "Hi {first_name|you}"
    await erase_fan(store, fan(6))

    def left(conn):
        return conn.execute(sa.select(sa.func.count()).select_from(answer_texts)).scalar()

    assert store.db.run_sync(left) == 9  # the fan's one text is gone, with its vector
    assert (await review.group(store.db, group.id)).group.size == 3
    assert (await sweep_for(store).run_once()).new == 0  # the erased text is not taken in again


async def test_the_real_pipelines_answered_broadcast_replies_are_grouped(database_url: str) -> None:
    """The demo line through `Runtime`: replies to a broadcast that the bot answered gather by
    the response its turn recorded; a hand-off and a text outside the window never do."""
    from bot.messages import utcnow
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from bot.topics.vectors import vectoriser_for
    from tests.conftest import ROOT

    env = {"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    runtime = await Runtime.start(load_settings(ROOT, env=env))
    try:
        store, outcomes = runtime.store, {}
        for n, body in enumerate(
            [
                "when does the tour start?",
                "what are the tour dates",
                "can i talk to a real person please",
                "what are the tour dates",
            ]
        ):
            phone = fan(500 + n)
            await runtime.handle(InboundSms(f"SMe2e{n:030d}", phone, US, "hi"))
            await runtime.handle(InboundSms(f"SMe2f{n:030d}", phone, US, "YES"))  # subscribed
            contact = await store.contact_by_phone(phone)
            if n < 3:  # the last fan never got the broadcast: outside any reply window
                await store.db.run(lambda c, i=contact.id, p=phone: store._enqueue(
                    c, i, [OutboundSms(p, "Tour news!", kind="broadcast")], utcnow(), None,
                    broadcast_id=9))  # fmt: skip
            outcomes[n] = await runtime.handle(InboundSms(f"SMe2g{n:030d}", phone, US, body))
        sweep = AnswerSweep(store.db, lambda: vectoriser_for(runtime.pipeline.brain.interpreter))
        await sweep.run_once()
        grouped = {t.message_id: g for g in await review.list_groups(store.db, status="all")
                   for t in (await review.group(store.db, g.id)).texts}  # fmt: skip
        for n, out in outcomes.items():
            said = [d["response"] for t, d in out.events if t == "utter" and d.get("response")]
            if n == 3 or out.escalation is not None or out.held:
                assert out.message_id not in grouped, n
            else:
                assert grouped[out.message_id].response == " + ".join(dict.fromkeys(said)), n
                assert grouped[out.message_id].broadcast_id == 9
        assert any(o.escalation is not None for o in outcomes.values())  # the set has a hand-off
        assert sum(o.escalation is None for o in list(outcomes.values())[:3]) >= 1
    finally:
        await runtime.close()
