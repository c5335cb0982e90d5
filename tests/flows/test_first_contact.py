"""First contact, re-asking after interruptions, and links back to a running flow (engine only)."""

from __future__ import annotations

from flow_helpers import Conversation, predict

from bot.flows import FlowStarted, HandOff, SetSlot, Subscribe

FLOWS = """
flows:
  opt_in:
    events: [first_contact]
    steps:
      - collect: agree
        max_asks: 2
        reask_every: 2
        next:
          - if: slots.agree
            then: subscribe
          - else: END
      - id: subscribe
        action: action_subscribe
  tour:
    keywords: [TOUR]
    nlu_trigger: [ask_tour]
    steps:
      - action: utter_tour
  birthday:
    keywords: [BDAY]
    steps:
      - collect: birthday
      - action: utter_thanks
  shoutout:
    nlu_trigger: [ask_shoutout]
    steps:
      - action: utter_welcome
      - link: birthday
  complaint:
    nlu_trigger: [complaint]
    steps:
      - escalate: {reason: complaint, priority: high}
"""
ASK = "OK to text you? (yes/no)"
TOUR = "Tour dates: example.com/tour"


def first(chat: Conversation, text: str, prediction=None):
    return chat.send(text, prediction, event="first_contact")


def test_first_text_question_is_answered_before_the_event_flow_asks(make_engine):
    chat = Conversation(make_engine(FLOWS))
    progress = first(chat, "when is the tour?", predict("ask_tour"))
    assert progress.says() == [TOUR, ASK]
    started = [c.flow_id for c in progress.commands if isinstance(c, FlowStarted)]
    assert started == ["opt_in", "tour"]
    assert chat.state.active is not None and chat.state.active.flow_id == "opt_in"


def test_first_text_without_a_question_only_starts_the_event_flow(make_engine):
    chat = Conversation(make_engine(FLOWS))
    assert first(chat, "hey", predict("greet")).says() == [ASK]


def test_question_asked_on_first_contact_waits_above_the_event_flow(make_engine):
    chat = Conversation(make_engine(FLOWS))
    assert first(chat, "BDAY").says() == ["When is your birthday?"]
    progress = chat.send("3/14/2004")
    assert progress.says()[-1] == ASK  # the birthday is done: now the queued opt-in asks
    assert SetSlot("birthday", "2004-03-14") in progress.commands


def test_an_escalation_on_first_contact_keeps_the_queued_event_flow(make_engine):
    chat = Conversation(make_engine(FLOWS))
    progress = first(chat, "this is awful", predict("complaint"))
    assert HandOff("complaint", "high") in progress.commands
    assert progress.says() == [ASK]


def test_reask_every_and_max_asks_space_and_cap_the_question(make_engine):
    chat = Conversation(make_engine(FLOWS))
    says = [first(chat, "tour?", predict("ask_tour")).says()]
    for _ in range(4):
        says.append(chat.send("tour??", predict("ask_tour")).says())
    assert says == [[TOUR, ASK], [TOUR], [TOUR, ASK], [TOUR], [TOUR]]
    assert Subscribe("sms_keyword") in chat.send("yesss").commands  # still waiting for it


def test_once_asked_enough_other_texts_are_not_retries(make_engine):
    chat = Conversation(make_engine(FLOWS))
    first(chat, "hi")
    chat.send("TOUR")
    chat.send("TOUR")  # asked twice now
    progress = chat.send("blorp", predict(None, 0.0))
    # nothing pending is re-asked or counted: the text is handled as if nothing were waiting
    assert [c.flow_id for c in progress.commands if isinstance(c, FlowStarted)] == [
        "pattern_cannot_handle"
    ]


def test_yes_no_question_takes_the_nlu_affirm_and_refuses_a_bare_question_mark(make_engine):
    chat = Conversation(make_engine(FLOWS))
    first(chat, "hi")
    assert Subscribe("sms_keyword") not in chat.send("?", predict("affirm", 0.6)).commands
    assert Subscribe("sms_keyword") in chat.send("lets gooo", predict("affirm", 0.95)).commands


def test_link_to_a_flow_in_progress_goes_back_to_it(make_engine):
    chat = Conversation(make_engine(FLOWS))
    chat.send("BDAY")
    progress = chat.send("it's my birthday today!!", predict("ask_shoutout"))
    assert progress.says() == ["Welcome Ana!", "When is your birthday?"]
    frames = [f.flow_id for f in chat.state.stack]
    assert frames == ["birthday"]  # resumed, not started a second time
