"""Teaching from a group of bot answers: the next fan asking in other words gets the new answer
(the demo line, the scikit-learn pipeline retrained in its child process)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.inbox.auth import Agent
from bot.messages import InboundSms
from bot.reloader import Reloader
from bot.runtime import Runtime
from bot.teach import Teacher
from bot.topics import review
from bot.topics.review_sweep import AnswerSweep
from bot.topics.vectors import vectoriser_for
from tests.teach.conftest import demo_models, project, trained_project  # noqa: F401  (fixtures)
from tests.teach.test_teach import start

from .test_review import bot_answered

ADMIN = Agent(7, "ana", "Ana", "admin")
PARKING = ["where can i park for the show", "how much is parking at the venue",
           "is there a parking garage near the arena", "can i park at the arena",
           "is the parking lot at ball arena open"]  # fmt: skip
PARKING_ANSWER = "Parking opens 3 hours before doors; lots A-C, $25."
NEW_PHRASING = "is there parking near the arena?"  # not among the fans' texts


@pytest.fixture
async def runtime(
    trained_project: Path,  # noqa: F811
    database_url: str,
) -> AsyncIterator[Runtime]:
    rt = await start(trained_project, database_url)
    try:
        yield rt
    finally:
        await rt.close()


async def ask(rt: Runtime, body: str):  # type: ignore[no-untyped-def]
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    for text in ("hi", "YES", body):
        out = await rt.handle(InboundSms(f"SM{uuid.uuid4().hex}", number, "+15550100000", text))
    return out


async def test_teaching_from_a_group_answers_the_next_fan_asking(runtime: Runtime) -> None:
    store = runtime.store
    # the bot answered fans' parking questions after a broadcast with another FAQ
    for n, body in enumerate(PARKING):
        await bot_answered(store, f"+1415666{n:04d}", body, "utter_accessibility",
                           intent="ask_accessibility")  # fmt: skip
    sweep = AnswerSweep(store.db, lambda: vectoriser_for(runtime.pipeline.brain.interpreter))
    await sweep.run_once()
    group = next(g for g in await review.list_groups(store.db) if g.fans >= 3)
    before = await ask(runtime, NEW_PHRASING)
    assert PARKING_ANSWER not in [q.reply.body for q in before.replies]

    teacher = Teacher.for_runtime(runtime)
    reloader = Reloader(runtime, interval_s=3600)  # before the edit: it sees the change
    taught = await review.teach(store.db, teacher, ADMIN, group.id, intent="ask_parking",
                                response=PARKING_ANSWER)  # fmt: skip
    assert taught.new_faq and taught.retraining and NEW_PHRASING not in taught.examples
    state = await teacher.wait()
    assert state["last_error"] is None and state["last_model"]
    assert await reloader.check()  # content and model swapped in between turns

    after = await ask(runtime, NEW_PHRASING)
    assert after.prediction is not None and after.prediction.intent == "ask_parking"
    assert PARKING_ANSWER in [q.reply.body for q in after.replies]
    assert (await review.group(store.db, group.id)).group.status == "taught"
