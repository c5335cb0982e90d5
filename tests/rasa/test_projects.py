"""Issue 19: public Rasa projects run after `fanline import rasa`, without hand edits.

RasaHQ/helpdesk-assistant (tests/fixtures/rasa/helpdesk_assistant) is imported, validated,
trained and its own test stories run with its actions on a real rasa-sdk action server; the
rest pins each conversion the real projects needed, on small projects written alike.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.flows import read_yaml
from bot.flows.triggers import payload_prediction
from bot.messages import Entity
from bot.rasa.cli import LEFT_BY_HAND
from tests.conftest import ROOT
from tests.rasa.helpers import project

FIXTURES = ROOT / "tests" / "fixtures" / "rasa"


def _actions_modules() -> dict[str, object]:
    return {m: v for m, v in sys.modules.items() if m == "actions" or m.startswith("actions.")}


@pytest.fixture(autouse=True)
def _own_actions_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each project here has its own `actions` package: not one an earlier test imported,
    and the next test does not see this one's."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = _actions_modules()
    for name in before:
        del sys.modules[name]
    yield
    for name in _actions_modules():
        del sys.modules[name]
    sys.modules.update(before)
    gc.collect()  # their Action subclasses too: rasa-sdk finds actions by subclass and module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _import(src: Path, new: Path, capsys: pytest.CaptureFixture[str], status: int = 0) -> str:
    code = main(["import", "rasa", str(src), str(new)])
    out = capsys.readouterr()
    assert code == status, out.out + out.err
    return out.out


def _start_action_server(folder: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its Sanic workers with it: stopped together (_stop)
    )  # fmt: skip
    deadline = time.monotonic() + 120  # a bound on start-up, not a speed claim
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(server.stderr.read().decode() if server.stderr else "exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)  # polling the server's own health answer, not a wait for an outcome
    _stop(server)
    raise AssertionError("the action server did not answer /health")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM the server's session, then SIGKILL it: a loaded machine took longer than the
    wait, and the server was left running after the test."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# The incident form as a fan fills it: a question mid-form is answered and the form goes on,
# validate_open_incident_form (rasa-sdk FormValidationAction) rejects a priority and the form asks
# again, the intent that started the form fills incident_title (from_trigger_intent).
FORM_CASES = """\
test_cases:
- test_case: the_incident_form_asks_validates_and_submits
  steps:
  - user: I need to open an incident
  - utter: utter_ask_email
  - user: are you a bot?
  - utter: utter_iamabot
  - user: jane@example.com
  - slot_was_set: [{requested_slot: priority}]
  - utter: utter_ask_priority
  - user: super
  - utter: utter_no_priority
  - utter: utter_ask_priority
  - user: high
  - utter: utter_ask_problem_description
  - user: my laptop will not boot
  - utter: utter_ask_incident_title
  - user: laptop broken
  - utter: utter_ask_confirm
  - user: yes
  - bot_contains: An incident with the following details would be opened
- test_case: a_password_problem_fills_the_title
  steps:
  - user: I'm having issues with my password
  - slot_was_set: [{incident_title: Problem resetting password}]
  - utter: utter_ask_email
  - user: jane@example.com
  - user: low
  - user: it says my password expired
  - utter: utter_ask_confirm
"""


def test_helpdesk_assistant_runs_as_imported_and_passes_its_own_test_stories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    new = tmp_path / "helpdesk"
    report = _import(FIXTURES / "helpdesk_assistant", new, capsys)
    assert "rule 'start open incident form' -> flow rasa_password_reset" in report
    assert "utter_opt_out_confirmed: added for STOP / START / HELP" in report
    assert "\nto do by hand: 0\n" in report  # exit status 0: nothing is left out
    assert main(["-q", "--project", str(new), "validate"]) == 0
    assert main(["-q", "--project", str(new), "train"]) == 0
    (new / "tests" / "conversations" / "form.yml").write_text(FORM_CASES)
    capsys.readouterr()
    port = _free_port()
    monkeypatch.setenv("FANLINE_ACTION_ENDPOINT", f"http://127.0.0.1:{port}/webhook")
    server = _start_action_server(new, port)
    try:
        code = main(["-q", "--project", str(new), "test"])
    finally:
        _stop(server)
    out = capsys.readouterr().out
    assert "14 passed, 0 failed" in out, out  # its 12 test stories and the two below
    assert code == 0


def test_a_button_payload_is_read_as_rasa_reads_it() -> None:
    p = payload_prediction('/trigger_handoff{"handoff_to": "financial_demo"}')
    assert p is not None and (p.intent, p.confidence) == ("trigger_handoff", 1.0)
    assert p.entities == (Entity("handoff_to", "financial_demo", extractor="payload"),)
    assert payload_prediction("/affirm@0.8").confidence == 0.8  # type: ignore[union-attr]
    for text in ("/ not a payload", "hello /affirm", '/affirm{"broken"', "/affirm[1]"):
        assert payload_prediction(text) is None


BUTTONS_DOMAIN = """\
version: "3.1"
intents: [greet, handoff, trigger_handoff, deny, help, open_incident, password_reset]
entities: [handoff_to]
slots:
  amount-of-money:
    type: any
    mappings: [{type: from_entity, entity: amount-of-money}]
responses:
  utter_greet: [{text: Hello!}]
  utter_paid: [{text: "Paid {amount-of-money}."}]
  utter_ask_handoff: [{text: "Shall I hand you over?"}]
  utter_ask_whatelse: [{text: "What else?"}]
  utter_to_finance: [{text: "Over to finance."}]
  utter_default: [{text: "Sorry, say it again?"}]
  utter_incident: [{text: "Opening an incident."}]
actions: [action_handoff_options, action_nobody_wrote]
"""
BUTTONS_RULES = """\
version: "3.1"
rules:
- rule: handoff from another bot
  steps:
  - intent: handoff
  - action: utter_greet
- rule: offer handoff
  steps:
  - intent: greet
  - action: utter_ask_handoff
  - action: action_handoff_options
- rule: hand off to finance
  steps:
  - action: action_handoff_options
  - intent: trigger_handoff
    entities:
    - handoff_to: financial_demo
  - action: utter_to_finance
- rule: deny handoff
  steps:
  - action: action_handoff_options
  - intent: deny
  - action: utter_ask_whatelse
- rule: incident
  steps:
  - or:
    - intent: open_incident
    - intent: password_reset
  - action: utter_incident
- rule: fallback
  steps:
  - intent: nlu_fallback
  - action: utter_default
  - action: action_two_stage_fallback
"""
BUTTONS_NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello there
    - good morning
- intent: deny
  examples: |
    - no
    - nope
    - no thanks
- intent: trigger_handoff
  examples: |
    - take me to [finance](handoff_to)
    - yes hand me over
    - connect me please
- intent: open_incident
  examples: |
    - open an incident
    - I need a ticket
    - file a ticket for me
- intent: password_reset
  examples: |
    - reset my password
    - I forgot my password
    - my password does not work
"""
BUTTONS_TESTS = """\
version: "3.1"
stories:
- story: a button sends an intent without text, and its entities
  steps:
  - intent: handoff
  - action: utter_greet
  - user: hello there
    intent: greet
  - action: utter_ask_handoff
  - action: action_handoff_options
  - intent: trigger_handoff
    entities:
    - handoff_to: financial_demo
  - action: utter_to_finance
- story: an or rule, each of its intents
  steps:
  - user: I forgot my password
    intent: password_reset
  - action: utter_incident
  - user: file a ticket for me
    intent: open_incident
  - action: utter_incident
"""
OPTIONS_ACTION = """\
from rasa_sdk import Action


class ActionHandoffOptions(Action):
    def name(self):
        return "action_handoff_options"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="Finance or nobody?")
        return []
"""


def _buttons_project(root: Path) -> Path:
    return project(root, {"domain.yml": BUTTONS_DOMAIN, "data/rules.yml": BUTTONS_RULES,
                          "data/nlu.yml": BUTTONS_NLU, "tests/test_stories.yml": BUTTONS_TESTS,
                          "actions/__init__.py": "", "actions/options.py": OPTIONS_ACTION,
                          "config.yml": "language: en\npipeline: default\n"},
                   base=False)  # fmt: skip


def test_button_intents_or_rules_entity_conditions_and_rules_after_an_action_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    # action_nobody_wrote is left to do by hand: the line runs, the status says so
    report = _import(_buttons_project(tmp_path / "rasa"), new, capsys, status=LEFT_BY_HAND)
    assert "\nto do by hand: 1\n" in report
    flows = read_yaml(new / "flows" / "rasa.yml")["flows"]
    # an intent with no examples (a button's) triggers its flow; validate accepts it
    assert flows["rasa_handoff"]["nlu_trigger"] == [{"intent": {"name": "handoff"}}]
    # `or:` -> one flow per intent, both running the rule's actions
    for intent in ("open_incident", "password_reset"):
        assert flows[f"rasa_{intent}"]["steps"] == [{"action": "utter_incident", "next": "END"}]
    # a rule that starts with action_handoff_options continues the turn that ends with it: the
    # action asked, so the step waits without asking, and the entity condition is kept
    steps = flows["rasa_greet"]["steps"]
    wait = next(s for s in steps if "collect" in s)
    assert wait["max_asks"] == 0 and "utter" not in wait
    guards = [b["if"] for b in wait["next"] if "if" in b]
    assert guards[0] == (
        "intent.name == 'trigger_handoff' and message.entities['handoff_to'] == 'financial_demo'"
    )
    assert "intent.name == 'deny'" in guards
    # Rasa's two-stage fallback is pattern_cannot_handle (asked "did you mean" before it)
    fallback = flows["pattern_cannot_handle"]["steps"]
    assert fallback[0] == {"action": "utter_default"} and "escalate" in fallback[-1]
    assert "action_two_stage_fallback" not in str(flows)
    assert read_yaml(new / "config.yml")["fanline"]["action_timeout_ms"] == 30000
    left_out = report.split("left out (")[1]
    assert "action_nobody_wrote: no code in actions/ implements it" in left_out
    assert "action_handoff_options" not in left_out
    assert main(["-q", "--project", str(new), "train"]) == 0
    capsys.readouterr()
    assert main(["-q", "--project", str(new), "test"]) == 0, capsys.readouterr().out
    assert "2 passed, 0 failed" in capsys.readouterr().out


def test_the_imported_line_answers_stop_start_help_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    _import(_buttons_project(tmp_path / "acme-bank"), new, capsys, status=LEFT_BY_HAND)
    responses = read_yaml(new / "domain.yml")["responses"]
    for name in (
        "utter_help",
        "utter_opt_out_confirmed",
        "utter_resubscribed",
        "utter_ask_opt_out",
    ):
        assert "Acme Bank" in responses[name][0]["text"], name
    assert main(["-q", "--project", str(new), "train"]) == 0
    (new / "tests" / "conversations" / "stop.yml").write_text(
        "test_cases:\n- test_case: stop_then_start\n  steps:\n"
        "  - user: HELP\n  - utter: utter_help\n  - user: STOP\n  - utter: utter_opt_out_confirmed\n"
        "  - user: START\n  - utter: utter_resubscribed\n"
    )
    capsys.readouterr()
    assert (
        main(["-q", "--project", str(new), "test", str(new / "tests/conversations/stop.yml")]) == 0
    )


def test_validate_leaves_actions_to_the_action_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the actions need a package only the action server has: validate must not import them
    files = {"actions/__init__.py": "", "actions/actions.py": "import a_package_only_the_server_has\n",
             "endpoints.yml": "action_endpoint:\n  url: http://127.0.0.1:9/webhook\n",
             "config.yml": "pipeline: default\n"}  # fmt: skip
    root = project(tmp_path, files)
    assert main(["-q", "--project", str(root), "validate"]) == 0, capsys.readouterr().err


def test_a_lines_own_human_handoff_flow_comes_before_the_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.flows import load_flows
    from bot.flows.triggers import HANDOFF_FLOW, Triggers
    from bot.messages import Prediction

    root = project(tmp_path, {"flows/handoff.yml": (
        "flows:\n  own_handoff:\n    description: ours\n    nlu_trigger: [human_handoff]\n"
        "    steps:\n      - action: utter_greet\n"
    )})  # fmt: skip
    flows = load_flows(sorted((root / "flows").glob("*.yml")))
    found = Triggers(flows, 0.5).by_intent(Prediction("a person please", "human_handoff", 0.99))
    assert [f for f, _ in found] == ["own_handoff", HANDOFF_FLOW]


def test_a_slot_with_a_hyphen_renders(tmp_path: Path) -> None:
    from bot.flows.model import Domain
    from bot.flows.responses import Responses

    domain = Domain.model_validate(
        {"responses": {"utter_paid": [{"text": "Paid {amount-of-money}."}]}}
    )
    rendered = Responses(domain).render("utter_paid", {"amount-of-money": 50}, {}, random.Random(0))
    assert rendered.text == "Paid 50."
