"""`fanline test` on Rasa files: test stories run, empty files fail, `test nlu FILE` scores FILE."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import ROOT

STORIES = """\
stories:
- story: tour keyword
  steps:
  - user: |
      TOUR
  - action: utter_tour_dates
- story: merch then a question that is not checked
  steps:
  - user: Merch
  - action: utter_merch
  - action: action_listen
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "line"
    assert main(["init", str(target)]) == 0
    if (ROOT / "models").is_dir():
        shutil.copytree(ROOT / "models", target / "models")
    return target


def test_rasa_test_stories_run_as_conversation_tests(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = demo / "tests" / "test_stories.yml"
    path.write_text(STORIES)
    assert main(["--project", str(demo), "test", str(path)]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    path.write_text(STORIES.replace("utter_merch", "utter_vip"))
    assert main(["--project", str(demo), "test", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED merch_then_a_question_that_is_not_checked" in out
    assert f"{path}:10" in out  # the line of the Rasa step that failed


def test_a_file_with_no_tests_fails_with_a_clear_message(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = demo / "tests" / "stories.yml"
    path.write_text("stories:\n- story: training only\n  steps:\n  - intent: greet\n")
    assert main(["--project", str(demo), "test", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no tests found in" in err and str(path) in err


def test_test_nlu_file_scores_that_file_instead_of_cross_validating(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo / "config.yml").write_text("pipeline: default\n")
    path = demo / "tests" / "test_nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: ask_tour_dates\n  examples: |\n'
        "    - when is the tour\n    - what are the tour dates\n"
        "- intent: out_of_scope/other\n  examples: |\n    - what is the capital of peru\n"
    )
    assert main(["--project", str(demo), "test", "nlu", "tests/test_nlu.yml"]) == 0
    out = capsys.readouterr().out
    assert "tested on" in out and "3 examples" in out and "cross-validation" not in out
