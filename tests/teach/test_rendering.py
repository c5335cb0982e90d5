"""A taught answer is rendered like every other response: the topic reply's `{first_name|there}`
(what "Make this an FAQ" pre-fills) reaches fans filled in, and braces no renderer reads are
refused, by `fanline validate` and by teach, with file and line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.content import load_content
from bot.errors import ValidationFailed
from bot.flows.responses import Responses
from bot.teach.content_writer import DOMAIN_FILE, InvalidContent, add_faq

PARKING = ["is there parking at the venue", "where do i park for the show"]
REPLY = "Hi {first_name|there}! Parking opens 3 hours before doors, lots A-C."


def render(project: Path, name: str, fan: dict[str, str]) -> str:
    responses = Responses(load_content(project).domain)
    return responses.render(name, {}, fan, random.Random(0)).text


def test_a_taught_answer_in_the_topic_reply_syntax_reaches_fans_filled_in(project: Path) -> None:
    add_faq(project, "ask_parking", REPLY, PARKING)
    assert render(project, "utter_ask_parking", {}) == (
        "Hi there! Parking opens 3 hours before doors, lots A-C."
    )
    assert render(project, "utter_ask_parking", {"first_name": "Sam"}).startswith("Hi Sam! ")


def test_every_response_reads_a_default_and_a_slot_wins_over_it(project: Path) -> None:
    domain = project / "domain.yml"
    domain.write_text(domain.read_text().replace(
        "responses:\n",
        'responses:\n  utter_zip_echo:\n    - text: "Shows near {zip|you} for {first_name|friend}."\n',
        1,
    ))  # fmt: skip
    responses = Responses(load_content(project).domain)
    rng = random.Random(0)
    text = responses.render("utter_zip_echo", {"zip": "80202"}, {"first_name": ""}, rng).text
    assert text == "Shows near 80202 for friend."


@pytest.mark.parametrize("broken", ["Hi {first name}!", "Doors at {time:>5}", "{0} seats", "a } b"])
def test_validate_refuses_braces_no_renderer_understands_naming_file_and_line(
    project: Path, broken: str
) -> None:
    domain = project / "domain.yml"
    text = domain.read_text()
    assert "responses:\n" in text
    domain.write_text(
        text.replace("responses:\n", f'responses:\n  utter_broken:\n    - text: "{broken}"\n', 1)
    )
    line = domain.read_text().splitlines().index(f'    - text: "{broken}"') + 1
    with pytest.raises(ValidationFailed) as failed:
        load_content(project)
    errors = [p for p in failed.value.problems if not p.warning]
    assert len(errors) == 1 and "no renderer understands" in errors[0].message
    assert errors[0].location is not None
    assert (Path(errors[0].location.file).name, errors[0].location.line) == ("domain.yml", line)


def test_teach_refuses_an_answer_no_renderer_understands_and_changes_nothing(
    project: Path,
) -> None:
    with pytest.raises(InvalidContent) as refused:
        add_faq(project, "ask_parking", "Hi {first name}, lots open at 4pm.", PARKING)
    assert any(DOMAIN_FILE in str(p) for p in refused.value.problems)
    assert not (project / DOMAIN_FILE).exists()
