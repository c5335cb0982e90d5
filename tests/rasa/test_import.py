"""`fanline import rasa`: Rasa's own starter project and a form-and-rules project become fan
lines that validate, train, pass their converted tests and answer what the Rasa project did."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.flows import read_yaml
from bot.rasa.cli import LEFT_BY_HAND
from bot.rasa.importer import import_project
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "rasa"


def _import(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int = 0
) -> tuple[Path, str]:
    new = tmp_path / name
    code = main(["import", "rasa", str(FIXTURES / name), str(new)])
    out = capsys.readouterr().out
    assert code == status, out
    return new, out


def _train_and_test(new: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["-q", "--project", str(new), "train"]) == 0
    capsys.readouterr()
    code = main(["-q", "--project", str(new), "test"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_rasas_starter_project_imports_validates_trains_and_passes_its_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, report = _import("initial_project", tmp_path, capsys)
    assert "converted (" in report and "approximated (" in report and "left out (" in report
    assert "rule 'Say goodbye anytime the user says goodbye' -> flow rasa_goodbye" in report
    assert "story 'sad path 1' -> flow with 3 turns rasa_greet" in report
    assert "channel rest" in report  # Rasa's REST channel: listed, not dropped silently
    assert "7 passed, 0 failed" in _train_and_test(new, capsys)


def test_the_imported_starter_answers_with_rasas_own_texts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, _ = _import("initial_project", tmp_path, capsys)
    rasa_domain = read_yaml(FIXTURES / "initial_project" / "domain.yml")
    texts = {name: v[0]["text"] for name, v in rasa_domain["responses"].items()}
    (new / "tests" / "conversations" / "texts.yml").write_text(
        "test_cases:\n- test_case: sad_path_in_rasas_words\n  steps:\n"
        f"  - user: hello\n  - bot: {texts['utter_greet']!r}\n"
        f"  - user: not good\n  - bot: {texts['utter_cheer_up']!r}\n"
        f"  - bot: {texts['utter_did_that_help']!r}\n"
        f"  - user: no\n  - bot: {texts['utter_goodbye']!r}\n"
        "- test_case: a_rule_answers_in_the_middle_of_a_story\n  steps:\n"
        f"  - user: hello\n  - user: are you a bot?\n  - bot: {texts['utter_iamabot']!r}\n"
    )
    assert "9 passed, 0 failed" in _train_and_test(new, capsys)


def test_a_form_and_rules_project_becomes_collect_flows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it validates, but a checkpoint story is left to do by hand
    new, report = _import("restaurant_form", tmp_path, capsys, status=LEFT_BY_HAND)
    assert "\nto do by hand: 1\n" in report, report
    flow = read_yaml(new / "flows" / "rasa.yml")["flows"]["restaurant_form"]
    collects = [s["collect"] for s in flow["steps"] if "collect" in s]
    assert collects == ["cuisine", "num_people", "outdoor_seating"]
    assert [s.get("action") for s in flow["steps"][-2:]] == ["utter_submit", "utter_slots_values"]
    starter = read_yaml(new / "flows" / "rasa.yml")["flows"]["rasa_request_restaurant"]
    assert starter["steps"][0] == {"call": "restaurant_form", "next": "END"}
    rules = str(FIXTURES / "restaurant_form" / "data" / "rules.yml")
    stories = str(FIXTURES / "restaurant_form" / "data" / "stories.yml")
    left_out = report.split("left out (")[1]
    # a rule while the form asks, with a slot condition: a flow for that form and that slot
    interrupt = read_yaml(new / "flows" / "rasa.yml")["flows"]["rasa_restaurant_form_thankyou"]
    assert (
        interrupt["if"]
        == "active_loop.name == 'restaurant_form' and slots['outdoor_seating'] == True"
    )
    assert f"{rules}:35: rule 'Interrupt a form only when the fan is sure'" not in left_out
    assert f"{stories}:8: story 'checkpoint example': line 10: checkpoints" in left_out
    assert "min_value dropped" in report
    assert "from_entity number" not in left_out  # the collect step reads its mappings' entities
    assert "nlu_fallback -> pattern_cannot_handle" in report
    endpoints = read_yaml(new / "endpoints.yml")
    assert endpoints["action_endpoint"]["url"] == "http://localhost:5055/webhook"
    assert "2 passed, 0 failed" in _train_and_test(new, capsys)


def test_the_importer_refuses_a_folder_in_use_and_a_folder_that_is_not_rasa(
    tmp_path: Path,
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        import_project(FIXTURES / "initial_project", busy)
    with pytest.raises(ConfigError, match="not a Rasa project"):
        import_project(tmp_path / "busy", tmp_path / "new")
    assert (busy / "x").read_text() == "keep me"
