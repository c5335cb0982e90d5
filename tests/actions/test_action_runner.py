"""ActionRunner in-process: the Rasa payload actions see, result mapping, every failure path."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from bot.actions import ActionCall, ActionResult, ActionRunner, latest_message_from
from bot.errors import ActionError, ConfigError
from bot.messages import Entity, Prediction
from tests.conftest import ROOT

HERE = Path(__file__).parent
DOMAIN = {"slots": {"zip": {"type": "text"}, "birthday": {"type": "date"}}, "responses": {}}


@pytest.fixture
def test_actions_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))


@pytest.fixture
async def runner(test_actions_path):
    runner = ActionRunner(package="fanline_test_actions", domain=DOMAIN, timeout_s=0.5)
    yield runner
    await runner.aclose()


def echo_call(**overrides) -> ActionCall:
    prediction = Prediction(
        text="when is the show",
        intent="ask_tour_dates",
        confidence=0.93,
        ranking=(("ask_tour_dates", 0.93), ("ask_tickets", 0.04)),
        entities=(Entity("city", "Denver", start=17, end=23),),
    )
    fields = {
        "name": "action_echo",
        "sender_id": "1042",
        "slots": {"zip": "80202", "birthday": date(1999, 7, 4)},
        "latest_message": latest_message_from(prediction),
        "active_flow": "tour_dates",
        "events": ({"event": "user", "text": "hi"}, {"event": "bot", "text": "hey"}),
    }
    return ActionCall(**(fields | overrides))


async def test_action_sees_a_rasa_shaped_tracker_and_domain(runner):
    result = await runner.run(echo_call())

    assert result.slots["seen_sender"] == "1042"
    assert result.slots["seen_intent"] == "ask_tour_dates"
    assert result.slots["seen_entities"] == ["Denver"]
    assert result.slots["seen_flows"] == ["tour_dates"]
    # a date slot reaches the action as JSON would carry it, the same in both modes
    assert result.slots["seen_slots"] == {"zip": "80202", "birthday": "1999-07-04"}
    assert result.slots["seen_events"] == 2
    assert result.slots["seen_latest_action"] == "action_listen"
    assert result.slots["seen_domain_slots"] == ["birthday", "zip"]


async def test_result_splits_slots_messages_and_other_events(runner):
    result = await runner.run(echo_call())

    assert isinstance(result, ActionResult)
    assert list(result.messages) == [
        {"text": "echo when is the show"},
        {"response": "utter_show", "city": "Denver"},
        {"image": "https://novavale.example/poster.jpg"},
        {"custom": {"kind": "card"}},
    ]
    assert [e["event"] for e in result.other_events] == ["followup"]
    assert result.other_events[0]["name"] == "action_listen"
    with pytest.raises(TypeError):
        result.slots["seen_sender"] = "someone else"  # type: ignore[index]


async def test_intent_ranking_is_derived_when_only_the_intent_is_given(runner):
    message = {"text": "hi", "intent": {"name": "greet", "confidence": 0.8}}
    result = await runner.run(echo_call(latest_message=message, active_flow=None))

    assert result.slots["seen_intent"] == "greet"
    assert result.slots["seen_entities"] == []
    assert result.slots["seen_flows"] == []


async def test_unknown_action_is_an_action_error_naming_the_registered_ones(runner):
    with pytest.raises(ActionError, match=r"unknown custom action 'action_nope'.*action_echo"):
        await runner.run(echo_call(name="action_nope"))


async def test_an_action_that_raises_is_an_action_error(runner):
    with pytest.raises(ActionError, match=r"'action_explode' raised RuntimeError: the CRM is down"):
        await runner.run(echo_call(name="action_explode"))


async def test_a_rejection_is_an_action_error(runner):
    with pytest.raises(ActionError, match=r"'action_reject' rejected execution: not today"):
        await runner.run(echo_call(name="action_reject"))


async def test_a_hanging_action_times_out(runner):
    with pytest.raises(ActionError, match=r"'action_hang' timed out after 0.5s"):
        await runner.run(echo_call(name="action_hang"))


async def test_an_actions_own_timeout_error_is_a_failure_not_our_deadline(runner):
    with pytest.raises(ActionError, match=r"raised TimeoutError: upstream ticketing API"):
        await runner.run(echo_call(name="action_raises_timeout"))


@pytest.fixture
def demo_actions(monkeypatch):
    """The demo's `actions` package, whichever project's `actions` an earlier test imported
    (`fanline import rasa` tests run Rasa projects' own): restored after the test."""
    monkeypatch.syspath_prepend(str(ROOT))
    for name in [n for n in sys.modules if n == "actions" or n.startswith("actions.")]:
        monkeypatch.delitem(sys.modules, name)


async def test_runner_registers_only_its_own_package(runner, demo_actions):
    demo = ActionRunner(package="actions")
    assert "action_echo" in runner.known_actions()
    assert "action_next_show_near_fan" not in runner.known_actions()
    assert demo.known_actions() == {
        "action_next_show_near_fan",
        "action_check_presale_code",
        "action_save_profile",
    }
    await demo.aclose()


async def test_without_package_or_endpoint_every_action_is_unknown():
    runner = ActionRunner(package=None)
    assert runner.known_actions() == set()
    with pytest.raises(ActionError, match="no actions are configured"):
        await runner.run(echo_call())


def test_a_missing_package_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot import custom actions package 'no_such_pkg'"):
        ActionRunner(package="no_such_pkg")


def test_a_package_with_a_syntax_error_names_file_and_line(tmp_path, monkeypatch):
    package = tmp_path / "broken_actions"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "actions.py").write_text("from rasa_sdk import Action\n\nclass X(Action:\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ConfigError) as caught:
        ActionRunner(package="broken_actions")

    assert caught.value.location is not None
    assert caught.value.location.file.endswith("broken_actions/actions.py")
    assert caught.value.location.line == 3


def test_a_phone_number_is_refused_as_sender_id():
    with pytest.raises(ValueError, match="not a phone number"):
        echo_call(sender_id="+15551234567")


async def test_state_that_json_cannot_carry_is_an_action_error(runner):
    with pytest.raises(ActionError, match="state is not JSON: object is not JSON serialisable"):
        await runner.run(echo_call(slots={"zip": object()}))


def test_an_endpoint_must_be_an_http_url():
    with pytest.raises(ConfigError, match="action_endpoint url must be http"):
        ActionRunner(endpoint_url="localhost:5055/webhook")


def test_timeout_must_be_positive():
    with pytest.raises(ConfigError, match="must be positive"):
        ActionRunner(package=None, timeout_s=0)


def test_latest_message_from_prediction_is_rasa_parse_data():
    prediction = Prediction(
        text="VIP?",
        intent="ask_vip",
        confidence=0.7,
        entities=(Entity("tier", "gold", start=0, end=3),),
    )
    message = latest_message_from(prediction, {"fan": {"zip": "10001"}})

    assert message == {
        "text": "VIP?",
        "intent": {"name": "ask_vip", "confidence": 0.7},
        "intent_ranking": [{"name": "ask_vip", "confidence": 0.7}],
        "entities": [{"entity": "tier", "value": "gold", "start": 0, "end": 3}],
        "metadata": {"fan": {"zip": "10001"}},
    }


def test_a_package_imported_again_registers_only_its_new_classes(tmp_path, monkeypatch):
    """Another project's package of the same name, imported earlier and still referenced (its
    runner is alive): its classes are subclasses of Action still, but not this package's."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "fanline_reimported_actions"
    package.mkdir()
    (package / "__init__.py").write_text("")
    action = (
        "from rasa_sdk import Action\n\n"
        "class Action{cls}(Action):\n"
        "    def name(self):\n        return {name!r}\n\n"
        "    def run(self, dispatcher, tracker, domain):\n        return []\n"
    )
    (package / "actions.py").write_text(action.format(cls="Old", name="action_old"))
    first = ActionRunner(package=package.name)
    assert first.known_actions() == {"action_old"}
    for name in [n for n in sys.modules if n.startswith(package.name)]:
        monkeypatch.delitem(sys.modules, name)
    (package / "actions.py").write_text(action.format(cls="Renamed", name="action_renamed"))
    assert ActionRunner(package=package.name).known_actions() == {"action_renamed"}
    assert first.known_actions() == {"action_old"}
