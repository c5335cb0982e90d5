"""Compliance on the real inbound path: ask once, the question's one-turn life, held threads,
START from a subscribed fan, other languages (real NLU model, real database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.compliance import OPT_OUT_ASK, OPT_OUT_SURE
from bot.runtime import Runtime
from tests.pipeline.test_pipeline import said, start, subscribed_fan, text

UNSURE = (
    "kind of tired of the texts"  # the phrase model's middle band (tests/compliance/test_phrases)
)


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = await start(database_url)
    try:
        yield rt
    finally:
        await rt.close()


async def subscription(runtime: Runtime, number: str) -> str:
    contact = await runtime.store.contact_by_phone(number)
    assert contact is not None
    return contact.subscription


async def test_unsure_is_asked_once_and_yes_unsubscribes(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    ask = await runtime.handle(text(number, UNSURE))
    assert said(ask) == ["utter_ask_opt_out"] and ask.escalation is None
    decided = [d for t, d in ask.events if t == "compliance"]
    assert [(d["kind"], d["keyword"]) for d in decided] == [("confirm_opt_out", "model")]
    assert OPT_OUT_ASK <= decided[0]["score"] < OPT_OUT_SURE  # the middle band
    yes = await runtime.handle(text(number, "Yes"))
    assert said(yes) == ["utter_opt_out_confirmed"]
    assert await subscription(runtime, number) == "unsubscribed"


async def test_the_question_lives_for_one_text_only(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, UNSURE))
    tour = await runtime.handle(text(number, "tour"))
    assert "utter_tour_dates" in said(tour)
    later = await runtime.handle(text(number, "yes"))
    assert "utter_opt_out_confirmed" not in said(later)
    assert await subscription(runtime, number) == "subscribed"


async def test_the_question_keeps_a_flow_where_it_was(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, "BDAY"))  # asks for the name
    await runtime.handle(text(number, UNSURE))
    answer = await runtime.handle(text(number, "Maya"))
    assert "utter_ask_birthday" in said(answer)


async def test_while_a_human_holds_the_thread_the_question_also_lives_one_text(
    runtime: Runtime,
) -> None:
    from bot.inbox import queue
    from bot.inbox.auth import Auth
    from bot.storage import inbox_store

    number = await subscribed_fan(runtime)
    assert (await runtime.handle(text(number, "can I talk to a real person please"))).escalation
    agent = await Auth(runtime.store.db, b"k").create_agent("ana", "a long password")
    contact = await runtime.store.contact_by_phone(number)
    conversation = await runtime.store.db.run(inbox_store.conversation_of_contact, contact.id)
    await queue.claim(runtime.store.db, conversation, agent)  # a person is in the thread now
    ask = await runtime.handle(text(number, UNSURE))
    assert said(ask) == ["utter_ask_opt_out"]  # compliance wins even over a person
    held = await runtime.handle(text(number, "hello?"))
    assert held.held
    yes = await runtime.handle(text(number, "yes"))  # an answer to the agent now, not to us
    assert yes.held and await subscription(runtime, number) == "subscribed"


async def test_start_from_a_subscribed_fan_changes_nothing(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    again = await runtime.handle(text(number, "START"))
    assert said(again) == ["utter_already_subscribed"]
    assert await subscription(runtime, number) == "subscribed"


async def test_plain_words_start_after_an_opt_out(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, "no more texts please"))
    assert await subscription(runtime, number) == "unsubscribed"
    back = await runtime.handle(text(number, "I want texts again"))
    assert said(back) == ["utter_resubscribed"]
    assert await subscription(runtime, number) == "subscribed"


async def test_a_greeting_in_another_language_gets_an_honest_reply_not_an_escalation(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "hola nova, buenas noches, te quiero mucho"))
    assert said(out) == ["utter_language_es"] and out.escalation is None
    assert ("language", {"language": "es"}) in out.events
    assert "solo habla inglés" in out.replies[0].reply.body


async def test_a_request_in_another_language_reaches_a_person_with_an_honest_reply(
    runtime: Runtime,
) -> None:
    """Issue 15: "me podrían ayudar con un reembolso por favor" got "English only" and nobody
    ever read it. The reply, in Spanish, says a person will answer; the escalation is open."""
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "me podrían ayudar con un reembolso por favor"))
    assert said(out) == ["utter_language_handoff_es"]
    assert out.escalation is not None
    assert "una persona te responderá" in out.replies[0].reply.body
    assert await subscription(runtime, number) == "subscribed"


async def test_a_complaint_about_something_else_gets_a_person_and_no_stop_question(
    runtime: Runtime,
) -> None:
    """Issue 15: an angry complaint got "Reply STOP..." added; it is not about the texts."""
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "my order never arrived, this is ridiculous"))
    assert out.escalation is not None  # a person sees the complaint
    assert "utter_ask_opt_out" not in said(out)
    assert not [d for t, d in out.events if t == "compliance"]
    assert await subscription(runtime, number) == "subscribed"


async def test_after_an_opt_out_by_model_yes_does_not_resubscribe(runtime: Runtime) -> None:
    """Issue 15: "i think im done with these texts tbh" unsubscribed the fan, and their next
    "yes" re-subscribed them. The next yes answers what was last asked; START still rejoins."""
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "not sure i want these texts anymore"))
    decided = [d for t, d in out.events if t == "compliance"]
    assert [(d["kind"], d["keyword"]) for d in decided] == [("opt_out", "model")]
    assert await subscription(runtime, number) == "unsubscribed"
    yes = await runtime.handle(text(number, "yes"))
    assert "utter_resubscribed" not in said(yes)
    assert await subscription(runtime, number) == "unsubscribed"
    back = await runtime.handle(text(number, "START"))
    assert said(back) == ["utter_resubscribed"]
    assert await subscription(runtime, number) == "subscribed"


async def test_after_a_stop_keyword_yes_still_rejoins_as_carriers_do(runtime: Runtime) -> None:
    number = await subscribed_fan(runtime)
    await runtime.handle(text(number, "STOP"))
    again = await runtime.handle(text(number, "yes"))
    assert said(again) == ["utter_resubscribed"]
    assert await subscription(runtime, number) == "subscribed"


async def test_a_request_gets_its_answer_and_no_stop_question(runtime: Runtime) -> None:
    """Issue 15: "birthday shout out pls" got only "Reply STOP to stop all texts"."""
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "birthday shout out pls"))
    assert "utter_ask_opt_out" not in said(out)
    assert any(t == "flow_started" for t, _ in out.events)  # the birthday flow answers it


@pytest.mark.parametrize(
    ("body", "wrong"),
    [("whats the release date again", "utter_already_subscribed"),
     ("what songs will she play", "utter_help"),
     ("what do crew members get", "utter_help")],
)  # fmt: skip
async def test_a_content_question_is_not_answered_by_start_or_help(
    runtime: Runtime, body: str, wrong: str
) -> None:
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, body))
    assert wrong not in said(out)
    assert not [d for t, d in out.events if t == "compliance"]


@pytest.mark.parametrize(
    "body", ["i get a lot of texts from this number", "me llegan muchísimos mensajes de ustedes"]
)
async def test_a_fan_describing_the_texts_stays_subscribed_asked_at_most(
    runtime: Runtime, body: str
) -> None:
    """Issue 15, item 2: an observation about the texts asks nothing: never a sure opt-out."""
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, body))
    assert await subscription(runtime, number) == "subscribed"
    assert said(out).count("utter_ask_opt_out") <= 1
    assert not [d for t, d in out.events if t == "compliance" and d["kind"] == "opt_out"]


async def test_an_explicit_opt_out_in_another_language_is_confirmed_in_it(
    runtime: Runtime,
) -> None:
    number = await subscribed_fan(runtime)
    out = await runtime.handle(text(number, "por favor dejen de enviarme mensajes, gracias"))
    assert await subscription(runtime, number) == "unsubscribed"
    assert said(out) == ["utter_opt_out_confirmed_es"]
