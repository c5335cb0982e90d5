"""A custom action's Rasa events the engine follows (issue 19): `FollowupAction(name)` runs a
flow next (back to a form in progress, which asks again), `ActiveLoop(None)` ends the form in
progress, and `active_loop.name` in conditions is that form."""

from __future__ import annotations

from flow_helpers import Conversation, predict

from bot.flows import DialogueState, TurnInput
from bot.flows.state import FlowEnded, SetSlot

DOMAIN = """
slots:
  card: {type: text}
  amount: {type: float}
forms:
  pay_form:
    required_slots: [card, amount]
responses:
  utter_ask_card:
    - text: "Which card?"
  utter_ask_amount:
    - text: "How much?"
  utter_paid:
    - text: "Paid."
  utter_balance_help:
    - text: "Balances are under Accounts."
"""
FLOWS = """
flows:
  pay:
    keywords: [PAY]
    steps:
      - call: pay_form
      - action: utter_paid
  pay_form:
    steps:
      - collect: card
        utter: utter_ask_card
      - collect: amount
        utter: utter_ask_amount
  balance:
    keywords: [BALANCE]
    if: active_loop.name == 'pay_form'
    steps:
      - action: action_show_balance
      - collect: card
        utter: utter_ask_card
        ask_before_filling: true
"""


def _chat(make_engine) -> tuple[Conversation, object]:
    engine = make_engine(FLOWS, DOMAIN)
    return Conversation(engine), engine


def _resume(chat: Conversation, events: list[dict]):
    chat.last = chat.engine.resume(chat.state, {}, TurnInput("", fan=chat.fan), events)
    chat.state = DialogueState.from_json(chat.last.state.to_json())
    return chat.last


def test_followup_to_the_form_in_progress_goes_back_to_it_and_it_asks_again(make_engine):
    chat, _ = _chat(make_engine)
    assert chat.send("pay").says() == ["Which card?"]
    stopped = chat.send("balance", predict(None))  # the `if` holds: pay_form is in progress
    assert stopped.pending_action == "action_show_balance"
    resumed = _resume(chat, [{"event": "followup", "name": "pay_form"}])
    assert resumed.says() == ["Which card?"]  # the form asks; the balance flow is gone
    assert FlowEnded("balance", "followup") in resumed.commands
    assert [f.flow_id for f in chat.state.stack] == ["pay", "pay_form"]
    assert chat.send("visa", predict("inform")).says() == ["How much?"]


def test_followup_to_a_flow_not_in_progress_starts_it_and_a_response_is_said(make_engine):
    chat, _ = _chat(make_engine)
    chat.send("pay")
    chat.send("balance", predict(None))
    resumed = _resume(chat, [{"event": "followup", "name": "utter_balance_help"},
                             {"event": "followup", "name": "action_listen"}])  # fmt: skip
    assert resumed.says() == ["Balances are under Accounts.", "Which card?"]


def test_active_loop_none_ends_the_form_and_what_ran_it_goes_on(make_engine):
    chat, _ = _chat(make_engine)
    chat.send("pay")
    chat.send("balance", predict(None))
    resumed = _resume(chat, [{"event": "active_loop", "name": None}])
    assert FlowEnded("pay_form", "deactivated") in resumed.commands
    assert resumed.says() == ["Which card?"]  # the balance flow's own question
    assert [f.flow_id for f in chat.state.stack] == ["pay", "balance"]
    # no form in progress now: the guard no longer holds
    assert chat.engine.active_loop(chat.state.stack) is None


def test_no_form_no_active_loop(make_engine):
    chat, engine = _chat(make_engine)
    assert engine.active_loop(()) is None
    chat.send("balance", predict(None))  # `if: active_loop.name == 'pay_form'`: not started
    assert chat.state.stack == ()


def test_a_form_takes_its_slots_from_the_text_that_starts_it(make_engine):
    # Rasa runs action_extract_slots as a form activates: "pay 50" fills `amount` as the form
    # starts, before `card` is asked (a validate_<form> step there sees it), not only once
    # the amount's own question comes
    chat, _ = _chat(make_engine)
    progress = chat.send("pay", predict(None, amount="50"))
    assert SetSlot("amount", 50.0) in progress.commands
    assert progress.says() == ["Which card?"]
    assert chat.send("visa", predict("inform")).says() == ["Paid."]  # amount known: not asked
