"""Loading flow and domain YAML: every error names the file, the line and the key."""

from __future__ import annotations

import pytest
from flow_helpers import DOMAIN, write

from bot.errors import ConfigError, ValidationFailed
from bot.flows import load_domain, load_flows
from bot.flows.loader import DEFAULT_FLOWS


def problems(
    excinfo: pytest.ExceptionInfo[ValidationFailed],
) -> list[tuple[int | None, str | None, str]]:
    return [(p.location.line, p.location.key, p.message) for p in excinfo.value.problems]


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "f.yml", "flows:\n  a:\n    steps: [\n      - action: x\n")
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([path])
    (problem,) = excinfo.value.problems
    assert problem.location.file == str(path)
    assert problem.location.line == 4
    assert problem.message.startswith("YAML syntax")


def test_unknown_key_and_bad_values_point_at_their_lines(tmp_path):
    path = write(
        tmp_path,
        "f.yml",
        """
        flows:
          greet:
            description: hi
            stepz: []
            steps:
              - action: utter_hi
              - collect: zip
                max_retries: -1
              - escalate:
                  reason: x
                  priority: asap
              - jump: nowhere
        """,
    )
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([path])
    found = problems(excinfo)
    assert (4, "flows.greet.stepz", "unknown key 'stepz'") in found
    assert any(line == 8 and key == "flows.greet.steps[1].max_retries" for line, key, _ in found)
    assert any(
        line == 11 and key == "flows.greet.steps[2].escalate.priority" for line, key, _ in found
    )
    assert (
        12,
        "flows.greet.steps[3]",
        "a step needs exactly one of: collect, action, set_slots, link, call, escalate, noop, wait, tag",
    ) in found
    assert str(excinfo.value).count(str(path)) == len(found)


def test_bad_condition_is_a_load_error_at_its_line(tmp_path):
    path = write(
        tmp_path,
        "f.yml",
        """
        flows:
          a:
            if: "fan.tags contains 'vip'"
            steps:
              - noop: true
                next:
                  - if: "profile.vip"
                    then: END
        """,
    )
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([path])
    found = problems(excinfo)
    assert [(line, key) for line, key, _ in found] == [
        (3, "flows.a.if"),
        (7, "flows.a.steps[0].next[0].if"),
    ]
    assert "unknown name 'profile'" in found[1][2]


def test_duplicate_flow_ids_across_files_and_duplicate_keys(tmp_path):
    one = write(tmp_path, "one.yml", "flows:\n  a:\n    steps: [{noop: true}]\n")
    two = write(
        tmp_path,
        "two.yml",
        "flows:\n  b:\n    steps: [{noop: true}]\n  a:\n    steps: [{noop: true}]\n",
    )
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([one, two])
    (problem,) = excinfo.value.problems
    assert (problem.location.file, problem.location.line) == (str(two), 4)
    assert f"{one}:2" in problem.message

    dup = write(
        tmp_path, "dup.yml", "flows:\n  a:\n    steps: [{noop: true}]\n  a:\n    steps: []\n"
    )
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([dup])
    assert problems(excinfo) == [(4, "a", "duplicate key 'a'")]


def test_project_flow_overrides_default_pattern(tmp_path):
    path = write(
        tmp_path,
        "f.yml",
        """
        flows:
          pattern_completed:
            steps:
              - action: utter_anything_else
        """,
    )
    flows = load_flows([path])
    assert flows["pattern_completed"].steps[0].action == "utter_anything_else"
    assert flows["pattern_cannot_handle"].where().file == str(DEFAULT_FLOWS)
    assert flows["pattern_completed"].where().line == 2


def test_yaml_12_booleans_and_bare_intent_triggers(tmp_path):
    path = write(
        tmp_path,
        "f.yml",
        """
        flows:
          a:
            keywords: [YES, NO, 42]
            nlu_trigger: [greet, {intent: hello}, {intent: {name: hey, confidence_threshold: 0.8}}]
            steps: [{noop: true, next: END}]
        """,
    )
    flow = load_flows([path])["a"]
    assert flow.keywords == ["YES", "NO", "42"]
    assert [(t.intent.name, t.intent.confidence_threshold) for t in flow.nlu_trigger] == [
        ("greet", None),
        ("hello", None),
        ("hey", 0.8),
    ]


def test_domain_merges_defaults_and_reports_problems(tmp_path):
    domain = load_domain([write(tmp_path, "domain.yml", DOMAIN)])
    assert domain.slots["size"].values == ["Small", "Medium", "Large"]
    assert "utter_cannot_handle" in domain.responses  # shipped default text
    override = write(tmp_path, "d2.yml", 'responses:\n  utter_cannot_handle:\n    - text: "Nope"\n')
    assert load_domain([override]).responses["utter_cannot_handle"][0].text == "Nope"

    bad = write(
        tmp_path,
        "bad.yml",
        """
        slots:
          colour: {type: categorical}
          when: {type: datetime}
        responses:
          utter_empty:
            - buttons: []
        """,
    )
    with pytest.raises(ValidationFailed) as excinfo:
        load_domain([bad])
    lines = sorted(line for line, _, _ in problems(excinfo))
    assert lines == [2, 3, 6]
    twice = write(tmp_path, "twice.yml", "slots:\n  zip: {type: text}\n")
    with pytest.raises(ValidationFailed) as excinfo:
        load_domain(
            [twice, write(tmp_path, "again.yml", "# b\n# c\nslots:\n  zip: {type: text}\n")]
        )
    assert problems(excinfo)[0][0] == 4


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([tmp_path / "nope.yml"])
    assert isinstance(excinfo.value.problems[0], ConfigError)
    assert excinfo.value.problems[0].location.file.endswith("nope.yml")
