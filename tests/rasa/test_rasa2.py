"""`fanline import rasa` on a Rasa 2.x-shaped project: a top-level actions.py with the files it
reads and its requirements, and responses with an empty variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.content import load_content
from bot.errors import ValidationFailed
from bot.flows import read_yaml
from tests.rasa.helpers import project
from tests.rasa.test_config import RASA2_CONFIG

RASA2 = {
    "domain.yml": """\
        version: "2.0"
        intents: [greet, ask_price]
        responses:
          utter_greet:
            - text: ''
            - text: Hello!
        actions:
          - action_price
        """,
    "data/nlu.yml": """\
        version: "2.0"
        nlu:
          - intent: greet
            examples: |
              - hi
              - hello
              - hey
          - intent: ask_price
            examples: |
              - what is the price
              - how much
              - price please
        """,
    "data/rules.yml": """\
        version: "2.0"
        rules:
          - rule: greet
            steps:
              - intent: greet
              - action: utter_greet
          - rule: price
            steps:
              - intent: ask_price
              - action: action_price
        """,
    "actions.py": """\
        import csv

        from rasa_sdk import Action


        class ActionPrice(Action):
            def name(self):
                return "action_price"

            def run(self, dispatcher, tracker, domain):
                with open("prices/list.csv") as f:
                    rows = list(csv.reader(f))
                with open("data/missing.json") as f:
                    f.read()
                dispatcher.utter_message(text=str(len(rows)))
                return []
        """,
    "prices/list.csv": "a,1\n",
    "config.yml": RASA2_CONFIG,
    "action-server-requirements.txt": "rasa-sdk==2.8.0\n",
}


def _import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, int]:
    rasa = project(tmp_path / "rasa2", RASA2, base=False)
    new = tmp_path / "new"
    code = main(["import", "rasa", str(rasa), str(new)])
    return new, capsys.readouterr().out, code


def test_a_top_level_actions_py_is_imported_with_the_files_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, report, code = _import(tmp_path, capsys)
    assert "no code in actions/ implements it" not in report, report
    assert (new / "actions" / "__init__.py").is_file()
    assert "action_price" in (new / "actions" / "actions.py").read_text()
    assert (new / "prices" / "list.csv").read_text() == "a,1\n"
    assert (new / "action-server-requirements.txt").is_file()
    assert "action-server-requirements.txt: copied" in report
    # the one thing left to do: a file the action opens that the project does not have
    assert "data/missing.json: named by the custom actions, not in the project" in report
    # Rasa 2's pipeline and policies were mapped: notes, not work left to do
    assert "\nto do by hand: 1\n" in report and code == 3, report
    assert "ConveRTTokenizer: read" in report and "policy FormPolicy" in report
    assert read_yaml(new / "config.yml")["fanline"]["action_timeout_ms"] == 30000


def test_an_empty_response_variant_is_dropped_with_a_report_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new, report, _ = _import(tmp_path, capsys)
    assert "domain:5 responses.utter_greet: a variant with empty text dropped" in report, report
    assert read_yaml(new / "domain.yml")["responses"]["utter_greet"] == [{"text": "Hello!"}]
    load_content(new)  # validates


def test_an_empty_variant_in_a_fanline_domain_is_still_refused_with_file_and_line(
    tmp_path: Path,
) -> None:
    line = project(tmp_path, {"domain.yml": RASA2["domain.yml"]})
    with pytest.raises(ValidationFailed) as exc:
        load_content(line)
    problem = next(p for p in exc.value.problems if "utter_greet" in str(p))
    assert "domain.yml:5" in str(problem) and not problem.warning


def test_a_response_with_only_empty_texts_is_left_to_do_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {**RASA2, "domain.yml": RASA2["domain.yml"].replace("- text: Hello!", "- text: ' '")}
    rasa = project(tmp_path / "rasa2", files, base=False)
    code = main(["import", "rasa", str(rasa), str(tmp_path / "new")])
    report = capsys.readouterr().out
    assert "domain:5 responses.utter_greet: only empty texts" in report, report
    assert "domain:6 responses.utter_greet: only empty texts" in report
    assert "\nto do by hand: 3\n" in report and code == 1  # validate names the response too


def test_an_actions_py_that_builds_paths_from_its_own_file_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {**RASA2, "actions.py": RASA2["actions.py"].replace(
        '"prices/list.csv"', 'os.path.join(os.path.dirname(__file__), "prices", "list.csv")'
    ).replace("import csv", "import csv\nimport os")}  # fmt: skip
    rasa = project(tmp_path / "rasa2", files, base=False)
    main(["import", "rasa", str(rasa), str(tmp_path / "new")])
    assert "actions.py: uses __file__, which is now one folder down" in capsys.readouterr().out
