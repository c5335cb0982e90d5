"""Issue 19: a Rasa project that switches forms through its custom actions, as RasaHQ/financial-
demo (Apache-2.0) does, written alike in a few lines: a story's turn taken while a form asks
(`active_loop: pay_form`, then `intent: transfer`) starts a flow only while that form is
active, the actions read `tracker.active_loop`, a switch deactivates the form and calls the
other, a submit rule's slot condition guards its actions, `validate_<form>` runs as the form
activates, and a Rasa FallbackClassifier number becomes `auto` with that number as its cap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.conversation_tests import _check_slots
from bot.flows import read_yaml
from bot.flows.conditions import evaluate
from bot.pipeline import TurnOutcome
from bot.rasa.convert import convert
from bot.rasa.stories import Story, StoryStep
from tests.rasa.helpers import project
from tests.rasa.test_projects import _own_actions_package  # noqa: F401  (autouse fixture)

DOMAIN = """\
version: "3.1"
intents: [pay, transfer, affirm, deny, inform]
slots:
  card:
    type: any
    mappings: [{type: from_text, conditions: [{active_loop: pay_form, requested_slot: card}]}]
  recipient:
    type: any
    mappings: [{type: from_text, conditions: [{active_loop: transfer_form, requested_slot: recipient}]}]
  checked:
    type: any
    mappings: [{type: custom}]
  next_form_name:
    type: text
    mappings: [{type: custom}]
  previous_form_name:
    type: text
    mappings: [{type: custom}]
forms:
  pay_form:
    required_slots: [card]
  transfer_form:
    required_slots: [recipient]
responses:
  utter_ask_card: [{text: Which card?}]
  utter_ask_recipient: [{text: To whom?}]
  utter_paid: [{text: Paid.}]
  utter_sent: [{text: Sent.}]
  utter_ask_whatelse: [{text: What else?}]
actions: [action_switch_ask, action_switch_deny, action_switch_affirm, action_switch_back_ask,
          validate_pay_form]
"""
RULES = """\
version: "3.1"
rules:
- rule: pay when no form asks
  condition:
  - active_loop: null
  steps:
  - intent: pay
  - action: pay_form
  - active_loop: pay_form
- rule: transfer when no form asks
  condition:
  - active_loop: null
  steps:
  - intent: transfer
  - action: transfer_form
  - active_loop: transfer_form
- rule: submit pay_form unless switched to
  condition:
  - active_loop: pay_form
  - slot_was_set:
    - previous_form_name: null
  steps:
  - action: pay_form
  - active_loop: null
  - action: utter_paid
- rule: submit transfer_form unless switched to
  condition:
  - active_loop: transfer_form
  - slot_was_set:
    - previous_form_name: null
  steps:
  - action: transfer_form
  - active_loop: null
  - action: utter_sent
"""
STORIES = """\
version: "3.1"
stories:
- story: pay, switch to transfer, deny
  steps:
  - intent: pay
  - action: pay_form
  - active_loop: pay_form
  - intent: transfer
  - action: action_switch_ask
  - slot_was_set:
    - next_form_name: transfer_form
  - intent: deny
  - action: action_switch_deny
  - action: pay_form
  - active_loop: pay_form
- story: pay, switch to transfer, affirm, back to pay
  steps:
  - intent: pay
  - action: pay_form
  - active_loop: pay_form
  - intent: transfer
  - action: action_switch_ask
  - intent: affirm
  - action: action_switch_affirm
  - action: transfer_form
  - active_loop: transfer_form
  - active_loop: null
  - action: utter_sent
  - action: action_switch_back_ask
  - intent: affirm
  - action: pay_form
  - active_loop: pay_form
- story: pay, switch to transfer, affirm, not back
  steps:
  - intent: pay
  - action: pay_form
  - active_loop: pay_form
  - intent: transfer
  - action: action_switch_ask
  - intent: affirm
  - action: action_switch_affirm
  - action: transfer_form
  - active_loop: transfer_form
  - active_loop: null
  - action: utter_sent
  - action: action_switch_back_ask
  - intent: deny
  - action: utter_ask_whatelse
"""
NLU = """\
version: "3.1"
nlu:
- intent: pay
  examples: |
    - pay my card
    - I want to pay my credit card
    - pay off the card bill
    - make a card payment
- intent: transfer
  examples: |
    - send money
    - transfer money to a friend
    - I want to wire some cash
    - move money to someone
- intent: affirm
  examples: |
    - yes
    - sure
    - yes please
    - ok
- intent: deny
  examples: |
    - no
    - nope
    - no thanks
    - not now
- intent: inform
  examples: |
    - visa
    - gold card
    - Jane
    - my brother
"""
# The project's own test stories: Rasa's e2e format, conversations a fan could have
TESTS = """\
version: "3.1"
stories:
- story: switch and come back
  steps:
  - user: pay my card
    intent: pay
  - action: pay_form
  - active_loop: pay_form
  - slot_was_set:
    - checked: pay_form
  - user: send money
    intent: transfer
  - action: action_switch_ask
  - slot_was_set:
    - next_form_name: transfer_form
  - intent: affirm
  - action: action_switch_affirm
  - slot_was_set:
    - next_form_name: null
  - slot_was_set:
    - previous_form_name: pay_form
  - action: transfer_form
  - active_loop: transfer_form
  - action: utter_ask_recipient
  - user: Jane
    intent: inform
  - active_loop: null
  - action: utter_sent
  - action: action_switch_back_ask
  - slot_was_set:
    - previous_form_name: null
  - intent: affirm
  - action: pay_form
  - active_loop: pay_form
  - action: utter_ask_card
  - user: visa
    intent: inform
  - active_loop: null
  - action: utter_paid
- story: switch declined, the form asks again
  steps:
  - user: pay my card
    intent: pay
  - action: pay_form
  - user: send money
    intent: transfer
  - action: action_switch_ask
  - slot_was_set:
    - next_form_name: transfer_form
  - intent: deny
  - action: action_switch_deny
  - slot_was_set:
    - next_form_name: null
  - action: pay_form
  - action: utter_ask_card
- story: switch, then stay out of the first form
  steps:
  - user: pay my card
    intent: pay
  - user: send money
    intent: transfer
  - intent: affirm
  - user: Jane
    intent: inform
  - action: utter_sent
  - intent: deny
  - action: utter_ask_whatelse
- story: a transfer on its own submits
  steps:
  - user: send money
    intent: transfer
  - action: utter_ask_recipient
  - user: Jane
    intent: inform
  - action: utter_sent
"""
ACTIONS = """\
from rasa_sdk import Action, FormValidationAction
from rasa_sdk.events import SlotSet

FORMS = {"pay_form", "transfer_form"}
NEXT = {"pay": "pay_form", "transfer": "transfer_form"}


class Ask(Action):
    def name(self):
        return "action_switch_ask"

    async def run(self, dispatcher, tracker, domain):
        active = tracker.active_loop.get("name")
        nxt = NEXT.get(tracker.latest_message["intent"]["name"])
        if active not in FORMS or nxt is None:  # financial-demo's check: no form, no question
            return [SlotSet("next_form_name", None)]
        dispatcher.utter_message(text=f"Leave {active} for {nxt}?", buttons=[
            {"payload": "/affirm", "title": "Yes"}, {"payload": "/deny", "title": "No"}])
        return [SlotSet("next_form_name", nxt)]


class Deny(Action):
    def name(self):
        return "action_switch_deny"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text=f"Back to {tracker.active_loop.get('name')}.")
        return [SlotSet("next_form_name", None)]


class Affirm(Action):
    def name(self):
        return "action_switch_affirm"

    async def run(self, dispatcher, tracker, domain):
        return [SlotSet("previous_form_name", tracker.active_loop.get("name")),
                SlotSet("next_form_name", None)]


class BackAsk(Action):
    def name(self):
        return "action_switch_back_ask"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text=f"Back to {tracker.get_slot('previous_form_name')}?")
        return [SlotSet("previous_form_name", None)]


class ValidatePay(FormValidationAction):
    def name(self):
        return "validate_pay_form"

    async def run(self, dispatcher, tracker, domain):
        # what it reads as the form activates: the active loop, as Rasa sends it
        events = await super().run(dispatcher, tracker, domain)
        return events + [SlotSet("checked", tracker.active_loop.get("name"))]
"""
CONFIG = """\
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: RulePolicy
"""


def _project(root: Path) -> Path:
    return project(root, {"domain.yml": DOMAIN, "data/rules.yml": RULES,
                          "data/stories.yml": STORIES, "data/nlu.yml": NLU,
                          "tests/test_stories.yml": TESTS, "actions/__init__.py": "",
                          "actions/actions.py": ACTIONS, "config.yml": CONFIG},
                   base=False)  # fmt: skip


def test_a_project_that_switches_forms_runs_its_own_conversations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    assert main(["import", "rasa", str(_project(tmp_path / "rasa")), str(new)]) == 0
    report = capsys.readouterr().out
    assert "transfer while form pay_form asks -> flow with 3 turns " in report, report
    assert "(if slots['previous_form_name'] == null)" in report
    flows = read_yaml(new / "flows" / "rasa.yml")["flows"]
    switch = flows["rasa_pay_form_transfer"]
    assert switch["if"] == "active_loop.name == 'pay_form'"
    assert switch["nlu_trigger"] == [{"intent": {"name": "transfer"}}]
    # the switch deactivates pay_form before transfer_form (Rasa has one active loop) ...
    steps = [s.get("action") or s.get("call") for s in switch["steps"]]
    assert steps.index("action_cancel_flow") + 1 == steps.index("transfer_form")
    assert "pay_form" in steps  # ... and calls it again when the fan goes back to it
    # the story's turns while pay_form asks come before the flow that starts a transfer
    assert list(flows).index("rasa_pay_form_transfer") < list(flows).index("rasa_transfer")
    assert flows["pay_form"]["steps"][0] == {"id": "activate", "action": "validate_pay_form"}
    assert main(["-q", "--project", str(new), "validate"]) == 0
    assert main(["-q", "--project", str(new), "train"]) == 0
    capsys.readouterr()
    code = main(["-q", "--project", str(new), "test"])
    out = capsys.readouterr().out
    assert "4 passed, 0 failed" in out, out
    assert code == 0


def test_turns_while_a_form_asks_become_their_own_flows_and_the_rest_stays() -> None:
    def s(kind: str, value: object, line: int) -> StoryStep:
        return StoryStep(kind, value, line)

    story = Story("story", "check while paying", "stories.yml", 1, (
        s("intent", "pay", 2), s("action", "pay_form", 3), s("active_loop", "pay_form", 4),
        s("intent", "check_balance", 5), s("action", "action_show_balance", 6),
        s("action", "pay_form", 7), s("intent", "check_balance", 8),
        s("action", "action_show_balance", 9), s("action", "pay_form", 10),
        s("active_loop", None, 11), s("action", "utter_paid", 12),
    ))  # fmt: skip
    domain = {"forms": {"pay_form": {"required_slots": ["card"]}},
              "responses": {"utter_ask_card": [{"text": "Which?"}], "utter_paid": [{"text": "Paid."}]},
              "slots": {"card": {"type": "any"}}}  # fmt: skip
    out = convert([story], domain)
    # the story's own flow: pay, then the form; each question while the form asks is answered
    # by a flow of its own, and going back to the form (`- action: pay_form`) is the form
    # itself, still under it, asking again (its completion is the form's, not this flow's)
    assert out.flows["rasa_pay"]["steps"] == [{"call": "pay_form", "next": "END"}]
    aside = out.flows["rasa_pay_form_check_balance"]
    assert aside["if"] == "active_loop.name == 'pay_form'"
    assert aside["steps"] == [{"action": "action_show_balance", "next": "END"}]


def test_a_rasa_threshold_becomes_auto_with_that_number_as_its_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    assert main(["import", "rasa", str(_project(tmp_path / "rasa")), str(new)]) == 0
    report = capsys.readouterr().out
    assert "FallbackClassifier threshold 0.3 -> auto, max_threshold 0.3" in report
    config = (new / "config.yml").read_text()
    assert "    threshold: auto  # calibrated" in config and "    max_threshold: 0.3  #" in config
    assert main(["--project", str(new), "train"]) == 0
    out = capsys.readouterr().out
    assert "out-of-scope threshold " in out and "at most max_threshold 0.3" in out
    threshold = float(out.split("out-of-scope threshold ")[1].split()[0])
    assert threshold <= 0.3
    (new / "config.yml").write_text(config.replace("max_threshold: 0.3", "max_threshold: 2"))
    assert main(["--project", str(new), "validate"]) == 2
    assert "FallbackClassifier.max_threshold must be a number in [0, 1]" in capsys.readouterr().err


def test_active_loop_is_a_name_conditions_read() -> None:
    ctx = {"active_loop": {"name": "pay_form"}, "slots": {}}
    assert evaluate("active_loop.name == 'pay_form'", ctx)
    assert not evaluate("active_loop.name == null", ctx)
    assert evaluate("active_loop.name == null", {"active_loop": {"name": None}})


def test_a_test_storys_null_slot_means_cleared_not_any_value() -> None:
    cleared = TurnOutcome(0, 1, events=(("slot_set", {"name": "requested_slot", "value": None}),))
    asked = TurnOutcome(0, 1, events=(("slot_set", {"name": "requested_slot", "value": "card"}),))
    assert _check_slots([{"requested_slot": None}], cleared) is None
    assert _check_slots([{"requested_slot": None}], asked) == (
        "slot 'requested_slot' = 'card', expected None"
    )
    assert _check_slots(["requested_slot"], asked) is None  # a bare name: any value


def test_a_rule_while_a_form_asks_becomes_a_flow_for_that_form() -> None:
    # Rasa's documented unhappy path: `condition: active_loop: f`, an intent, its answer, the
    # form again; a `slot_was_set` condition joins the flow's `if`
    def s(kind: str, value: object, line: int) -> StoryStep:
        return StoryStep(kind, value, line)

    rule = Story("rule", "chitchat in the form", "rules.yml", 1, (
        s("intent", "chitchat", 5), s("action", "utter_chitchat", 6),
        s("action", "pay_form", 7), s("active_loop", "pay_form", 8),
    ), condition=({"active_loop": "pay_form"}, {"slot_was_set": [{"card": None}]}))  # fmt: skip
    domain = {"forms": {"pay_form": {"required_slots": ["card"]}},
              "responses": {"utter_ask_card": [{"text": "Which?"}],
                            "utter_chitchat": [{"text": "Fine."}]},
              "slots": {"card": {"type": "text"}}}  # fmt: skip
    out = convert([rule], domain)
    flow = out.flows["rasa_pay_form_chitchat"]
    assert flow["if"] == "active_loop.name == 'pay_form' and slots['card'] == null"
    assert flow["steps"] == [{"action": "utter_chitchat", "next": "END"}]
    assert not out.report.left_out


def test_a_test_story_whose_form_ends_without_answers_is_noted() -> None:
    from bot.rasa.stories import to_test_case

    def s(kind: str, value: object, line: int, user: str | None = None) -> StoryStep:
        return StoryStep(kind, value, line, user)

    story = Story("story", "pay at once", "tests/test_stories.yml", 1, (
        s("intent", "pay", 3, "pay my card"), s("action", "pay_form", 4),
        s("active_loop", "pay_form", 5), s("active_loop", None, 6), s("action", "utter_paid", 7),
    ))  # fmt: skip
    _, notes = to_test_case(story, {"pay_form"})
    assert any(
        "tests/test_stories.yml:6: form pay_form ends here with no answer" in n for n in notes
    )
    answered = Story("story", "pay, answered", "t.yml", 1, (
        s("intent", "pay", 3, "pay my card"), s("action", "pay_form", 4),
        s("intent", "inform", 5, "visa"), s("active_loop", None, 6),
    ))  # fmt: skip
    assert not any("ends here" in n for n in to_test_case(answered, {"pay_form"})[1])
