"""The flow engine, turn by turn, on content loaded from real YAML."""

from __future__ import annotations

import pytest
from flow_helpers import Conversation, predict

from bot.flows import (
    DialogueState,
    FlowEnded,
    FlowStarted,
    Frame,
    HandOff,
    RunAction,
    SetSlot,
    StepTaken,
    Subscribe,
    TurnInput,
    Unsubscribe,
)

BIRTHDAY = """
flows:
  birthday_shoutout:
    description: Collect birthday and ZIP.
    keywords: [BDAY, birthday]
    nlu_trigger:
      - intent:
          name: ask_birthday_shoutout
          confidence_threshold: 0.7
    steps:
      - collect: birthday
        max_retries: 1
      - id: ask_zip
        collect: zip
      - action: utter_thanks
  tour:
    description: Tour dates.
    keywords: [TOUR]
    nlu_trigger: [ask_tour]
    steps:
      - action: utter_tour
"""


def commands_of(progress, kind):
    return [c for c in progress.commands if isinstance(c, kind)]


def test_keyword_starts_flow_and_collect_fills_slots_in_order(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    first = chat.send("  Bday!! ")
    assert first.says() == ["When is your birthday?"]
    assert commands_of(first, FlowStarted) == [FlowStarted("birthday_shoutout", "keyword:BDAY")]
    assert chat.state.stack == (Frame("birthday_shoutout", "0_collect_birthday", asks=1),)

    second = chat.send("March 3, 2001")
    assert commands_of(second, SetSlot) == [SetSlot("birthday", "2001-03-03")]
    assert second.says() == ["What's your ZIP code?"]

    third = chat.send("90210")
    assert third.says() == ["Thanks Ana! Birthday 2001-03-03, ZIP 90210."]
    assert FlowEnded("birthday_shoutout", "completed") in third.commands
    assert chat.state.stack == ()
    assert dict(chat.state.slots) == {"birthday": "2001-03-03", "zip": "90210"}


def test_intent_trigger_respects_its_threshold(make_engine):
    engine = make_engine(BIRTHDAY)
    below = Conversation(engine).send("hi", predict("ask_birthday_shoutout", 0.69))
    assert commands_of(below, FlowStarted)[0].flow_id == "pattern_cannot_handle"
    above = Conversation(engine).send("hi", predict("ask_birthday_shoutout", 0.7))
    assert commands_of(above, FlowStarted)[0] == FlowStarted(
        "birthday_shoutout", "intent:ask_birthday_shoutout"
    )
    # A bare intent name uses the engine's default threshold.
    default = Conversation(make_engine(BIRTHDAY, default_threshold=0.95))
    assert commands_of(default.send("x", predict("ask_tour", 0.9)), FlowStarted)[0].flow_id == (
        "pattern_cannot_handle"
    )


def test_entity_in_the_triggering_message_fills_the_slot(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    progress = chat.send(
        "bday on 3/14/2001", predict("ask_birthday_shoutout", birthday="3/14/2001")
    )
    assert SetSlot("birthday", "2001-03-14") in progress.commands
    assert progress.says() == ["What's your ZIP code?"]


def test_invalid_answer_reasks_with_slot_specific_text_then_hands_off(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    chat.send("bday")
    chat.send("2001-03-03")
    first = chat.send("no idea")
    assert first.says() == ["That doesn't look like a ZIP code.", "What's your ZIP code?"]
    assert chat.state.stack[-1].retries == 1
    second = chat.send("still no")
    assert chat.state.stack[-1].retries == 2
    assert commands_of(second, HandOff) == []
    third = chat.send("not telling")  # past max_retries (2 by default)
    assert commands_of(third, HandOff) == [HandOff("retry_limit", "normal")]
    assert third.says() == ["Got it. Someone from the team will reply here soon."]
    assert chat.state.stack == ()


def test_generic_rephrase_and_custom_max_retries(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    chat.send("bday")
    assert chat.send("whenever").says() == ["Sorry, I didn't get that.", "When is your birthday?"]
    assert commands_of(chat.send("dunno"), HandOff) == [HandOff("retry_limit", "normal")]


def test_rejection_refuses_a_valid_value(make_engine):
    engine = make_engine(
        """
        flows:
          signup:
            keywords: [JOIN]
            steps:
              - collect: age
                rejections:
                  - if: "slots.age < 13"
                    utter: utter_too_young
              - action: utter_tour
        """
    )
    chat = Conversation(engine)
    chat.send("join")
    refused = chat.send("twelve")
    assert refused.says() == ["Sorry, you must be 13 or older.", "How old are you?"]
    assert commands_of(refused, SetSlot) == []
    accepted = chat.send("21")
    assert SetSlot("age", 21.0) in accepted.commands
    assert accepted.says() == ["Tour dates: example.com/tour"]


def test_interruption_runs_other_flow_then_reasks(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    chat.send("bday")
    progress = chat.send("what about the tour?", predict("ask_tour", 0.9))
    assert progress.says() == ["Tour dates: example.com/tour", "When is your birthday?"]
    started = [c.flow_id for c in commands_of(progress, FlowStarted)]
    assert started == ["tour", "pattern_continue_interrupted"]
    assert chat.state.stack == (Frame("birthday_shoutout", "0_collect_birthday", asks=2),)
    assert chat.send("Jan 2 1990").says() == ["What's your ZIP code?"]


def test_keyword_interrupts_even_a_free_text_question(make_engine):
    engine = make_engine(
        """
        flows:
          intro:
            keywords: [HI]
            steps:
              - collect: name
              - action: utter_welcome
          tour:
            keywords: [TOUR]
            steps:
              - action: utter_tour
        """
    )
    chat = Conversation(engine)
    chat.send("hi")
    assert chat.send("TOUR").says() == ["Tour dates: example.com/tour", "What's your name?"]
    answered = chat.send("Zoë")
    assert SetSlot("name", "Zoë") in answered.commands


def test_cancel_keyword_and_intent_drop_the_flow(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    chat.send("bday")
    progress = chat.send("never mind!")
    assert progress.says() == ["No problem, cancelled."]
    assert FlowEnded("birthday_shoutout", "cancelled") in progress.commands
    assert chat.state.stack == ()

    chat.send("bday")
    by_intent = chat.send("stop asking", predict("cancel", 0.8))
    assert FlowEnded("birthday_shoutout", "cancelled") in by_intent.commands
    # With nothing in progress, "cancel" has nothing to cancel: it cannot be handled.
    idle = chat.send("cancel")
    assert commands_of(idle, FlowStarted)[0].flow_id == "pattern_cannot_handle"


def test_no_match_escalates_as_out_of_scope(make_engine):
    progress = Conversation(make_engine(BIRTHDAY)).send("what's the weather", predict(None, 0.0))
    assert progress.says() == [
        "Sorry, I can't help with that here. Someone from the team will get back to you."
    ]
    assert commands_of(progress, HandOff) == [HandOff("out_of_scope", "normal")]
    assert progress.state.stack == ()


def test_human_handoff_intent(make_engine):
    progress = Conversation(make_engine(BIRTHDAY)).send("a person pls", predict("human_handoff"))
    assert commands_of(progress, HandOff) == [HandOff("fan_asked", "normal")]


def test_retrieval_intent_answers_and_keeps_the_question(make_engine):
    engine = make_engine(BIRTHDAY)
    faq = predict("faq", 0.9)
    faq = type(faq)(text="", intent="faq", confidence=0.9, retrieval_intent="faq/ask_merch")
    idle = Conversation(engine).send("merch?", faq)
    assert idle.says() == ["Merch is at example.com/shop"]
    assert commands_of(idle, HandOff) == []
    chat = Conversation(engine)
    chat.send("bday")
    assert chat.send("merch?", faq).says() == [
        "Merch is at example.com/shop",
        "When is your birthday?",
    ]
    assert chat.state.stack[-1].retries == 0


LINKS = """
flows:
  start:
    keywords: [GO]
    steps:
      - call: ask_email
      - set_slots:
          - shoutout_requested: true
      - link: finish
      - action: utter_tour   # never reached: link ends the flow
  ask_email:
    steps:
      - collect: email
  finish:
    steps:
      - action: utter_welcome
  boss:
    keywords: [BOSS]
    steps:
      - escalate:
          reason: complaint
          priority: high
"""


def test_call_returns_and_link_replaces(make_engine):
    chat = Conversation(make_engine(LINKS))
    asked = chat.send("go")
    assert asked.says() == ["Your email?"]
    assert [f.flow_id for f in chat.state.stack] == ["start", "ask_email"]
    done = chat.send("Ana@Example.com")
    assert done.says() == ["Welcome Ana!"]
    assert SetSlot("shoutout_requested", True) in done.commands
    ended = commands_of(done, FlowEnded)
    assert ended[:3] == [
        FlowEnded("ask_email", "completed"),
        FlowEnded("start", "linked"),
        FlowEnded("finish", "completed"),
    ]
    assert FlowStarted("finish", "link:start") in done.commands
    assert chat.state.slots["email"] == "Ana@example.com"


def test_escalate_step_hands_off_and_clears_the_stack(make_engine):
    chat = Conversation(make_engine(LINKS))
    chat.send("go")
    progress = chat.send("BOSS")
    assert commands_of(progress, HandOff) == [HandOff("complaint", "high")]
    assert {c.outcome for c in commands_of(progress, FlowEnded)} == {"escalated"}
    assert chat.state.stack == ()


def test_loop_that_never_waits_becomes_internal_error(make_engine):
    engine = make_engine(
        """
        flows:
          spin:
            keywords: [SPIN]
            steps:
              - id: a
                noop: true
                next: b
              - id: b
                set_slots: [{shoutout_requested: true}]
                next: a
        """,
        max_steps=20,
    )
    progress = Conversation(engine).send("spin")
    assert FlowEnded("spin", "error") in progress.commands
    assert commands_of(progress, HandOff) == [HandOff("internal_error", "high")]
    assert progress.says()[-1].startswith("Sorry, something went wrong")
    assert len(commands_of(progress, StepTaken)) < 30


def test_conditional_next_and_builtin_actions(make_engine):
    engine = make_engine(
        """
        flows:
          optin:
            keywords: [JOIN]
            steps:
              - collect: agree
                next:
                  - if: slots.agree
                    then: yes
                  - else: no
              - id: yes
                action: action_subscribe
                next: END
              - id: no
                action: action_unsubscribe
        """
    )
    yes = Conversation(engine)
    yes.send("join")
    assert commands_of(yes.send("maybe? 🤔"), Subscribe) == []  # not a yes/no answer
    assert commands_of(yes.send("yep 👍"), Subscribe) == [Subscribe("sms_keyword")]
    no = Conversation(engine)
    no.send("join")
    progress = no.send("Nope")
    assert commands_of(progress, Unsubscribe) == [Unsubscribe()]
    assert commands_of(progress, Subscribe) == []


def test_custom_action_stops_and_resume_continues(make_engine):
    engine = make_engine(
        """
        flows:
          lookup:
            keywords: [ZIP]
            steps:
              - collect: zip
              - action: action_lookup_city
              - action: utter_thanks
        """
    )
    chat = Conversation(engine)
    chat.send("zip")
    stopped = chat.send("sw1a 1aa")
    assert stopped.pending_action == "action_lookup_city"
    assert stopped.commands[-1] == RunAction("action_lookup_city")
    assert stopped.says() == []
    resumed = chat.resume({"birthday": "1999-12-31"})
    assert resumed.pending_action is None
    assert resumed.says() == ["Thanks Ana! Birthday 1999-12-31, ZIP SW1A 1AA."]
    assert resumed.commands[0] == SetSlot("birthday", "1999-12-31")


def test_first_contact_event_and_guard(make_engine):
    engine = make_engine(
        """
        flows:
          welcome:
            events: [first_contact]
            if: "fan.subscription == 'subscribed'"
            steps:
              - action: utter_welcome
        """
    )
    subscribed = engine.turn(
        DialogueState(),
        TurnInput("hello", None, event="first_contact", fan={"subscription": "subscribed"}),
    )
    assert subscribed.says() == ["Welcome !"]
    guarded = engine.turn(DialogueState(), TurnInput("hello", None, event="first_contact"))
    assert [c.flow_id for c in commands_of(guarded, FlowStarted)] == ["pattern_cannot_handle"]


def test_persisted_slots_forget_the_rest_and_initial_values_apply(make_engine):
    engine = make_engine(
        """
        flows:
          survey:
            keywords: [SURVEY]
            persisted_slots: [size]
            steps:
              - collect: size
              - collect: name
                next:
                  - if: "slots.tier == 'basic'"
                    then: END
                  - else: END
        """
    )
    chat = Conversation(engine)
    chat.send("survey")
    chat.send("2")
    done = chat.send("Ana")
    assert SetSlot("name", None) in done.commands
    assert dict(chat.state.slots) == {"size": "Medium"}


def test_state_json_round_trip():
    state = DialogueState(
        (Frame("a", "s1", 2, True, "retry_limit"), Frame("b")), {"zip": "12345", "n": 2.5}
    )
    again = DialogueState.from_json(state.to_json())
    assert again == state
    assert DialogueState.from_json(None) == DialogueState()
    with pytest.raises(TypeError):
        again.slots["zip"] = "x"  # type: ignore[index]
