"""Retrieval actions in imported rules and stories (issue 19 item 2): Rasa's `utter_faq`, which
its ResponseSelector answers with the `utter_faq/<key>` of the fan's text, has no response of
its own; the imported line says the fan's key, validates, and passes Rasa's test stories."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.flows import read_yaml
from bot.rasa.convert import convert
from bot.rasa.stories import Story, StoryStep
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "rasa" / "retrieval_faq"


def _import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    new = tmp_path / "line"
    code = main(["import", "rasa", str(FIXTURE), str(new)])
    out = capsys.readouterr().out
    assert code == 0, out
    return new, out


def test_a_retrieval_action_imports_as_the_fans_key_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, report = _import(tmp_path, capsys)
    assert "rule 'answer a faq': utter_faq (a retrieval action)" in report
    assert main(["-q", "--project", str(new), "validate"]) == 0, capsys.readouterr().out
    flows = read_yaml(new / "flows" / "rasa.yml")["flows"]
    assert flows["rasa_faq"]["steps"] == [{"action": "utter_faq", "next": "END"}]
    steps = flows["rasa_greet"]["steps"]
    # the story's faq turn says the key; it is not a question the next turn asks again
    assert {"action": "utter_faq"} in steps
    assert all(s.get("utter") != "utter_faq" for s in steps)
    # a faq the turn does not expect is answered aside (the engine's), not a link ending it
    assert all(s.get("link") != "rasa_faq" for s in steps)


def test_the_imported_line_answers_each_key_and_passes_rasas_test_stories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, _ = _import(tmp_path, capsys)
    texts = {
        name: variants[0]["text"]
        for name, variants in read_yaml(FIXTURE / "domain.yml")["responses"].items()
    }
    (new / "tests" / "conversations" / "keys.yml").write_text(
        "test_cases:\n- test_case: each_key_its_own_answer\n  steps:\n"
        f"  - user: how can I buy tickets\n  - bot: {texts['utter_faq/tickets']!r}\n"
        f"  - user: is this sms only\n  - bot: {texts['utter_faq/channels']!r}\n"
        "  - not_utter: utter_faq/tickets\n"
        "- test_case: a_second_question_is_answered_and_the_story_goes_on\n  steps:\n"
        f"  - user: hello there\n  - bot: {texts['utter_greet']!r}\n"
        f"  - user: can I reach you on whatsapp\n  - bot: {texts['utter_faq/channels']!r}\n"
        f"  - user: where do I get tickets\n  - bot: {texts['utter_faq/tickets']!r}\n"
        f"  - user: amazing\n  - bot: {texts['utter_happy']!r}\n"
    )
    assert main(["-q", "--project", str(new), "train"]) == 0
    capsys.readouterr()
    code = main(["-q", "--project", str(new), "test"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 passed, 0 failed" in out


def test_a_faq_turn_while_a_form_asks_is_left_to_the_forms_own_aside() -> None:
    def step(kind: str, value: object, line: int) -> StoryStep:
        return StoryStep(kind, value, line)

    story = Story("story", "a question mid-form", "stories.yml", 1, (
        step("intent", "request_table", 2), step("action", "table_form", 3),
        step("active_loop", "table_form", 4), step("intent", "faq", 5),
        step("action", "utter_faq", 6), step("action", "table_form", 7),
        step("active_loop", None, 8), step("action", "utter_booked", 9),
    ))  # fmt: skip
    domain = {
        "forms": {"table_form": {"required_slots": ["guests"]}},
        "slots": {"guests": {"type": "text", "mappings": [{"type": "from_text"}]}},
        "responses": {"utter_ask_guests": [{"text": "How many?"}], "utter_booked": [{"text": "Ok"}],
                      "utter_faq/parking": [{"text": "Behind."}]},
    }  # fmt: skip
    out = convert([story], domain)
    assert out.flows["rasa_request_table"]["steps"] == [
        {"call": "table_form"}, {"action": "utter_booked", "next": "END"}
    ]  # fmt: skip
    assert any("line(s) 5 is answered aside while the form asks" in a
               for a in out.report.approximated)  # fmt: skip


def test_utter_out_of_scope_says_its_first_key_fanline_has_no_out_of_scope_keys() -> None:
    rule = Story("rule", "out of scope", "rules.yml", 1, (
        StoryStep("intent", "out_of_scope", 2), StoryStep("action", "utter_out_of_scope", 3),
    ))  # fmt: skip
    domain = {"responses": {"utter_out_of_scope/non_english": [{"text": "English only."}],
                            "utter_out_of_scope/other": [{"text": "I can't help."}]}}  # fmt: skip
    out = convert([rule], domain)
    steps = out.flows["rasa_out_of_scope"]["steps"]
    assert steps == [{"action": "utter_out_of_scope/other", "next": "END"}]
    assert any("utter_out_of_scope -> utter_out_of_scope/other" in a
               for a in out.report.approximated)  # fmt: skip
