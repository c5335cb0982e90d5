"""Teach end to end: fans' texts -> an FAQ in the content files -> retrain -> hot reload -> the bot
answers a phrasing it was never shown; and labels -> suggestions -> accept / reject."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from bot.errors import BadRequest, Conflict, Forbidden, NotFound
from bot.inbox.api import model_status
from bot.inbox.auth import Agent
from bot.messages import InboundSms
from bot.reloader import Reloader
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.storage.label_store import traffic_labels
from bot.teach import Teacher, accept, label_turn, list_suggestions, reject, teach
from bot.teach.content_writer import NLU_FILE
from tests.teach.conftest import PIPELINE

US = "+15550100000"
ADMIN = Agent(7, "ana", "Ana", "admin")
AGENT = Agent(8, "bo", "Bo", "agent")
ANSWER = "Denver is on tonight, doors 6:30pm. Drive safe in the snow!"


async def start(project: Path, database_url: str) -> Runtime:
    settings = load_settings(project, env={"FANLINE_DATABASE_URL": database_url,
                                           "FANLINE_SECRET_KEY": "test",
                                           "FANLINE_NLU_PIPELINE": PIPELINE})  # fmt: skip
    return await Runtime.start(settings)


@pytest.fixture
async def runtime(trained_project: Path, database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(trained_project, database_url)
    try:
        yield rt
    finally:
        await rt.close()


async def send(rt: Runtime, number: str, body: str):  # type: ignore[no-untyped-def]
    return await rt.handle(InboundSms(f"SM{uuid.uuid4().hex}", number, US, body))


async def subscribed_fan(rt: Runtime) -> str:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    await send(rt, number, "hi")
    await send(rt, number, "YES")
    return number


def said(outcome) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [d.get("response") for t, d in outcome.events if t == "utter"]


def conversation_of(rt: Runtime, contact_id: int) -> int:
    with rt.store.db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id FROM conversations WHERE contact_id = :c"), {"c": contact_id}
        ).scalar_one()


def add_topic(rt: Runtime, message_ids: list[int]) -> int:
    """What the topic sweep (bot.topics) makes of waiting texts: a topic and its texts."""
    from bot.storage.topic_tables import topic_texts, topics

    now = datetime.now(UTC)
    with rt.store.db.engine.begin() as conn:
        topic = conn.execute(
            topics.insert().values(status="open", label="parking", size=len(message_ids),
                                   created_at=now, updated_at=now).returning(topics.c.id)
        ).scalar_one()  # fmt: skip
        rows = conn.execute(
            sa.select(sa.column("id"), sa.column("contact_id"))
            .select_from(sa.table("messages"))
            .where(sa.column("id").in_(message_ids))
        ).all()
        conn.execute(topic_texts.insert(), [
            {"message_id": r.id, "topic_id": topic, "contact_id": r.contact_id, "created_at": now}
            for r in rows
        ])  # fmt: skip
    return int(topic)


PARKING = ["where can i park for the show", "how much is parking at the venue",
           "is there a parking garage near the arena", "can i park at the arena",
           "where do i park my car?? text me 303 555 0199", "is the parking lot at ball arena open"]  # fmt: skip
PARKING_ANSWER = "Parking opens 3 hours before doors; lots A-C, $25. Rideshare: gate 4."
# what "Make this an FAQ" pre-fills from the topic's reply: the fan gets it filled in
TAUGHT = "Hi {first_name|there}! " + PARKING_ANSWER
NEW_PHRASING = "is there parking near the arena?"  # not among the fans' texts


async def test_teach_from_a_topic_retrains_and_the_bot_answers_a_new_phrasing(
    runtime: Runtime,
) -> None:
    fans = [await subscribed_fan(runtime) for _ in range(3)]
    asked = [await send(runtime, fans[i % 3], text) for i, text in enumerate(PARKING)]
    topic = add_topic(runtime, [o.message_id for o in asked])
    before = await send(runtime, await subscribed_fan(runtime), NEW_PHRASING)
    assert PARKING_ANSWER not in [q.reply.body for q in before.replies]

    teacher = Teacher.for_runtime(runtime)
    reloader = Reloader(runtime, interval_s=3600)
    taught = await teach(runtime.store.db, teacher, ADMIN, topic_id=topic, intent="ask_parking",
                         response=TAUGHT)  # fmt: skip
    assert taught.retraining and len(taught.examples) == len(PARKING)
    assert NEW_PHRASING not in taught.examples
    assert "where do i park my car?? text me <phone>" in taught.examples
    state = await teacher.wait()
    assert state["last_error"] is None and state["last_model"] and not state["training"]
    inbox = SimpleNamespace(runtime=lambda: runtime, db=runtime.store.db)
    shown = await model_status(inbox)  # what the inbox shows: trained, not loaded here yet
    assert shown["retrain"]["status"] == "done" and not shown["live"]
    assert await reloader.check()  # content and model, swapped in between turns
    shown = await model_status(inbox)
    assert shown["live"] and shown["model"] == state["last_model"]

    after = await send(runtime, await subscribed_fan(runtime), NEW_PHRASING)
    assert after.prediction is not None and after.prediction.intent == "ask_parking"
    assert f"Hi there! {PARKING_ANSWER}" in [q.reply.body for q in after.replies]


async def test_teach_from_a_thread_takes_the_fans_texts_of_its_escalation(
    runtime: Runtime,
) -> None:
    fan = await subscribed_fan(runtime)
    first = await send(runtime, fan, "is the parking lot at ball arena open")
    assert first.escalation is not None  # out of scope: a person has it
    await send(runtime, fan, "my name is Dana, parking lot open yet?")  # joins, held or not
    teacher = Teacher.for_runtime(runtime)
    teacher.autotrain = False
    conversation = conversation_of(runtime, first.contact_id)
    with runtime.store.db.engine.connect() as conn:
        texts = conn.execute(
            sa.text("SELECT body FROM messages WHERE escalation_id IS NOT NULL AND contact_id = :c"),
            {"c": first.contact_id},
        ).scalars().all()  # fmt: skip
    taught = await teach(runtime.store.db, teacher, None, conversation_id=conversation,
                         intent="ask_lot", response="Lots open at 4pm.")  # fmt: skip
    assert not taught.retraining and (await teacher.state())["last_model"] is None
    assert len(texts) == 2
    assert taught.examples == ("is the parking lot at ball arena open",
                               "my name is <name>, parking lot open yet?")  # fmt: skip
    with pytest.raises(NotFound):
        await teach(runtime.store.db, teacher, None, conversation_id=10_000, intent="ask_x",
                    response="x")  # fmt: skip
    with pytest.raises(Forbidden):
        await teach(runtime.store.db, teacher, AGENT, conversation_id=conversation,
                    intent="ask_lot2", response="x")  # fmt: skip
    with pytest.raises(BadRequest, match="at least 2"):
        await teach(runtime.store.db, teacher, ADMIN, examples=["only one"], intent="ask_one",
                    response="x")  # fmt: skip


async def test_labels_become_suggestions_accepted_once_or_rejected(runtime: Runtime) -> None:
    db = runtime.store.db
    fan = await subscribed_fan(runtime)
    parking = await send(runtime, fan, "is there parking near the arena? 303-555-0199")
    denver = await send(runtime, fan, "is the denver show still on with all this snow")
    weather = await send(runtime, fan, "whats the weather like in denver")
    teacher = Teacher.for_runtime(runtime)
    teacher.autotrain = False

    first = await label_turn(db, AGENT, parking.message_id, "intent", "ask_accessibility")
    again = await label_turn(db, AGENT, parking.message_id, "intent", "ask_tour_dates")
    assert again == first  # one label per (text, agent): relabelling updates it
    other = await label_turn(db, ADMIN, denver.message_id, "intent", "ask_tour_dates")
    handover = await label_turn(db, AGENT, weather.message_id, "handover")
    assert len({first, other, handover}) == 3
    with pytest.raises(NotFound):
        await label_turn(db, AGENT, parking.replies[0].outbox_id, "handover")  # not a fan's text
    with pytest.raises(BadRequest):
        await label_turn(db, AGENT, parking.message_id, "maybe")

    found = {s.id: s for s in await list_suggestions(db)}
    assert set(found) == {first, other, handover}
    label = found[first]
    assert label.text == "is there parking near the arena? <phone>" and label.verdict == "intent"
    assert label.intent == "ask_tour_dates" and label.agent_id == AGENT.id
    assert label.predicted == parking.prediction.intent
    assert label.confidence == pytest.approx(parking.prediction.confidence, abs=1e-3)
    assert label.to_json()["created_at"].endswith("+00:00")

    with pytest.raises(Forbidden):
        await accept(db, teacher, AGENT, first)
    accepted = await accept(db, teacher, ADMIN, first)
    assert accepted.status == "accepted"
    nlu = (runtime.settings.project_dir / NLU_FILE).read_text()
    assert (
        "  - intent: ask_tour_dates\n    examples: |\n      - is there parking near the arena? <phone>\n"
        in nlu
    )
    with pytest.raises(Conflict):
        await accept(db, teacher, ADMIN, first)
    rejected = await reject(db, ADMIN, other)
    assert rejected.status == "rejected"
    with pytest.raises(Conflict):
        await accept(db, teacher, ADMIN, other)
    kept = await accept(db, teacher, ADMIN, handover)  # out-of-scope traffic data, no example
    assert (
        kept.status == "accepted" and (runtime.settings.project_dir / NLU_FILE).read_text() == nlu
    )
    assert [s.id for s in await list_suggestions(db, "accepted")] == [handover, first]
    assert await list_suggestions(db) == []

    # threshold data: the hand-over, and intent verdicts not trained on (new), never accepted ones
    late = await label_turn(db, ADMIN, parking.message_id, "intent", "ask_parking")
    rows = await db.run(traffic_labels)
    assert sorted(rows, key=str) == sorted(
        [("whats the weather like in denver", None),
         ("is there parking near the arena? <phone>", "ask_parking")], key=str)  # fmt: skip
    with pytest.raises(NotFound):
        await accept(db, teacher, ADMIN, late + 100)
    with pytest.raises(BadRequest):  # an intent the content does not know: the label stays new
        await accept(db, teacher, ADMIN, late, intent="ask_nothing_known")
    (still,) = await list_suggestions(db)
    assert (still.status, still.intent, still.verdict) == ("new", "ask_parking", "intent")
    # a hand-over an admin decides was answerable after all: an example of the intent given
    late_weather = await label_turn(db, ADMIN, weather.message_id, "handover")
    fixed = await accept(db, teacher, ADMIN, late_weather, intent="ask_tour_dates")
    assert (fixed.verdict, fixed.intent, fixed.status) == ("intent", "ask_tour_dates", "accepted")
    assert (
        "      - whats the weather like in denver\n"
        in (runtime.settings.project_dir / NLU_FILE).read_text()
    )


async def test_two_admins_accepting_one_suggestion_at_once_append_it_once(
    runtime: Runtime,
) -> None:
    db = runtime.store.db
    teacher = Teacher.for_runtime(runtime)
    teacher.autotrain = False
    fan = await subscribed_fan(runtime)
    turn = await send(runtime, fan, "whens nova on stage tonight")
    label = await label_turn(db, AGENT, turn.message_id, "intent", "ask_tour_dates")
    other = Agent(9, "cy", "Cy", "admin")
    results = await asyncio.gather(
        accept(db, teacher, ADMIN, label), accept(db, teacher, other, label),
        return_exceptions=True,
    )  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Suggestion"]
    nlu = (runtime.settings.project_dir / NLU_FILE).read_text()
    assert nlu.count("- whens nova on stage tonight\n") == 1
