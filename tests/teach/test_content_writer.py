"""Taught FAQs appended to the content files: a clean diff, validated, restored on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import load_content
from bot.errors import BadRequest, Conflict
from bot.teach.content_writer import (
    DOMAIN_FILE,
    FLOWS_FILE,
    NLU_FILE,
    InvalidContent,
    add_examples,
    add_faq,
)
from tests.teach.conftest import git

DENVER = ["is the denver show still on", "denver show cancelled because of snow?",
          "is ball arena still happening tonight"]  # fmt: skip
ANSWER = "Yes {first_name}, Denver is on: doors 6:30pm at Ball Arena. Drive safe!"


def snapshot(project: Path) -> dict[str, bytes]:
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(project.rglob("*"))
            if p.is_file() and ".git" not in p.parts}  # fmt: skip


def test_a_new_faq_is_three_new_files_that_validate(project: Path) -> None:
    written = add_faq(project, "ask_denver_show", ANSWER, DENVER)
    assert written.files == (NLU_FILE, DOMAIN_FILE, FLOWS_FILE)
    assert written.examples == tuple(DENVER)
    assert git(project, "status", "--porcelain").split() == ["??", "data/taught.yml", "??",
                                                             "domain/", "??", "flows/taught.yml"]  # fmt: skip
    content = load_content(project)
    assert "ask_denver_show" in content.intents
    assert content.domain.responses["utter_ask_denver_show"][0].text == ANSWER
    flow = content.flows["taught_ask_denver_show"]
    assert [s.action for s in flow.steps] == ["utter_ask_denver_show"]
    nlu = (project / NLU_FILE).read_text()
    assert nlu.startswith("# FAQs taught from the inbox")
    assert "      - is the denver show still on\n" in nlu


def test_a_second_faq_is_appended_and_the_diff_only_adds(project: Path) -> None:
    add_faq(project, "ask_denver_show", ANSWER, DENVER)
    for rel in (NLU_FILE, DOMAIN_FILE, FLOWS_FILE):  # the content team comments the files
        path = project / rel
        path.write_text("# reviewed by the content team, keep this line\n" + path.read_text())
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "taught")
    before = snapshot(project)

    add_faq(project, "ask_parking", "Parking opens 2 hours before doors.",
            ["is there parking at the venue", "where do i park for the show"])  # fmt: skip

    diff = git(project, "diff", "--unified=0")
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed and all(line.startswith("+") for line in changed), diff
    for rel in (NLU_FILE, DOMAIN_FILE, FLOWS_FILE):  # old bytes kept as they were, then ours
        assert (project / rel).read_bytes().startswith(before[rel])
    assert {"ask_parking", "ask_denver_show"} <= load_content(project).intents


def test_files_in_another_indentation_get_items_in_theirs(project: Path) -> None:
    (project / NLU_FILE).write_text('version: "3.1"\nnlu:\n- intent: ask_bags\n  examples: |\n'
                                    "    - can i bring a bag\n    - bag policy?\n")  # fmt: skip
    (project / "flows" / "taught.yml").write_text(
        "flows:\n    bags:\n        nlu_trigger:\n            - intent:\n"
        "                name: ask_bags\n        steps:\n            - action: utter_merch\n"
    )
    add_faq(project, "ask_denver_show", ANSWER, DENVER)
    nlu = (project / NLU_FILE).read_text()
    assert "\n- intent: ask_denver_show\n  examples: |\n    - is the denver show still on\n" in nlu
    assert "\n    taught_ask_denver_show:\n      description:" in (project / FLOWS_FILE).read_text()
    content = load_content(project)
    assert {"ask_bags", "ask_denver_show"} <= content.intents
    assert {"bags", "taught_ask_denver_show"} <= set(content.flows)


def test_a_validation_failure_restores_every_file_byte_for_byte(project: Path) -> None:
    # valid as it is; anything appended after YAML's document end marker is not
    (project / FLOWS_FILE).write_text(
        "# the content team's\nflows:\n  bags:\n    nlu_trigger:\n      - intent:\n"
        "          name: ask_merch\n    steps:\n      - action: utter_merch\n...\n"
    )
    before = snapshot(project)
    with pytest.raises(InvalidContent) as failed:
        add_faq(project, "ask_denver_show", ANSWER, DENVER)
    assert f"{project / FLOWS_FILE}:11: YAML syntax" in str(failed.value)  # where it broke
    assert snapshot(project) == before  # data/taught.yml was written first: removed again
    assert not (project / "domain").exists()  # the folder it made is gone too
    assert not (project / NLU_FILE).exists()


@pytest.mark.parametrize(
    ("intent", "response", "error"),
    [
        ("Ask Denver", ANSWER, BadRequest),
        ("x", ANSWER, BadRequest),
        ("ask_tour_dates", ANSWER, Conflict),  # an intent of the demo
        ("out_of_scope", ANSWER, BadRequest),
        ("ask_denver_show", "   ", BadRequest),
        ("ask_denver_show", "Hi {nickname}!", BadRequest),  # not a slot or fan field
    ],
)
def test_bad_names_and_responses_are_refused_and_nothing_changes(
    project: Path, intent: str, response: str, error: type[Exception]
) -> None:
    before = snapshot(project)
    with pytest.raises(error):
        add_faq(project, intent, response, DENVER)
    assert snapshot(project) == before


def test_examples_the_bot_knows_as_another_intent_are_left_out(project: Path) -> None:
    with pytest.raises(BadRequest, match="at least 2"):
        add_faq(project, "ask_when", ANSWER, ["when is the tour", "tour dates?", "new question"])
    written = add_faq(project, "ask_when", ANSWER, ["When is the tour", "new one", "new two"])
    assert written.examples == ("new one", "new two")


def test_an_accepted_example_joins_its_taught_block(project: Path) -> None:
    add_faq(project, "ask_denver_show", ANSWER, DENVER)
    add_faq(project, "ask_parking", "Parking opens 2 hours before doors.",
            ["is there parking at the venue", "where do i park for the show"])  # fmt: skip
    before = (project / NLU_FILE).read_text()
    assert add_examples(project, "ask_denver_show", ["denver still a go??"]) == (NLU_FILE,)
    after = (project / NLU_FILE).read_text()
    assert after == before.replace(
        "      - is ball arena still happening tonight\n",
        "      - is ball arena still happening tonight\n      - denver still a go??\n",
    )
    assert add_examples(project, "ask_denver_show", ["Denver still a go??"]) == ()  # known
    # an intent of the content team's own files gets a block of its own in data/taught.yml
    add_examples(project, "ask_tour_dates", ["tour stops list pls"])
    assert after in (project / NLU_FILE).read_text()
    assert (
        "  - intent: ask_tour_dates\n    examples: |\n      - tour stops list pls\n"
        in (project / NLU_FILE).read_text()
    )
    data = load_content(project).nlu_data
    assert {e.text for e in data.examples if e.intent == "ask_tour_dates"} >= {
        "tour stops list pls"
    }
    with pytest.raises(BadRequest):
        add_examples(project, "ask_nothing_like_it", ["x y"])
