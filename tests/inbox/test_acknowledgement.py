"""The words a fan is told about their case match the priority the team's queue shows: content
whose acknowledgement says "urgent" for a `high` escalation does not validate (file and line),
and the demo's own acknowledgements say what its flows escalate with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.content import load_content
from bot.errors import ValidationFailed
from bot.flows.model import EscalateStep
from tests.conftest import ROOT
from tests.teach.conftest import copy_demo

# how a text names a priority, written apart from the validator's own list
NAMED = {"urgent": re.compile(r"\burgent", re.I), "high": re.compile(r"\bhigh[- ]priority", re.I),
         "normal": re.compile(r"\bnormal[- ]priority", re.I),
         "low": re.compile(r"\blow[- ]priority", re.I)}  # fmt: skip


def test_every_acknowledgement_of_the_demo_names_the_priority_its_flow_escalates_with() -> None:
    content = load_content(ROOT)  # validates: a mismatch is an error
    checked = 0
    for flow in content.flows.values():
        levels = {s.escalate.priority for s in flow.steps if isinstance(s, EscalateStep)}
        for step in flow.steps if levels else ():
            name = getattr(step, "action", None)
            for response in (name, f"{name}_after_hours"):
                for variant in content.domain.responses.get(str(response), ()):
                    told = {p for p, w in NAMED.items() if w.search(variant.text or "")}
                    assert told <= levels, (flow.id, response, variant.text)
                    checked += bool(told)
    assert checked >= 2  # the complaint's acknowledgements do name one (high)


@pytest.mark.parametrize(
    ("said", "priority"),
    [("I've flagged it as urgent.", "high"), ("Marked high priority!", "normal"),
     ("Flagged as urgent.", "low")],
)  # fmt: skip
def test_an_acknowledgement_promising_another_priority_does_not_validate(
    tmp_path: Path, said: str, priority: str
) -> None:
    project = copy_demo(tmp_path)
    flows = project / "flows" / "escalation.yml"
    text = flows.read_text()
    block = "          reason: complaint\n          priority: high\n"
    assert block in text
    flows.write_text(
        text.replace(block, f"          reason: complaint\n          priority: {priority}\n")
    )
    domain = project / "domain.yml"
    lines = domain.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  utter_complaint:")) + 1
    lines[at] = f'    - text: "{said}"\n'
    domain.write_text("".join(lines))
    with pytest.raises(ValidationFailed) as failed:
        load_content(project)
    [error] = [p for p in failed.value.problems if "'utter_complaint'" in p.message]
    assert not error.warning and f"queue shows {priority}" in error.message
    assert error.location is not None and error.location.line == at + 1
    assert Path(error.location.file).name == "domain.yml"


def test_the_shared_acknowledgements_name_no_priority(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    domain = project / "domain.yml"
    text = domain.read_text()
    old = '  utter_escalation_ack:\n    - text: "'
    assert old in text
    domain.write_text(text.replace(old, old + "Flagged as urgent! ", 1))
    with pytest.raises(ValidationFailed, match="utter_escalation_ack"):
        load_content(project)
