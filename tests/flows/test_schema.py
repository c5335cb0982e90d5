"""The generated JSON Schema: current in docs/, and it accepts and refuses what the loader does."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bot.flows.loader import DEFAULT_FLOWS, read_yaml
from bot.flows.schema import flow_file_schema, main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "flows.schema.json"


def test_committed_schema_is_current(capsys):
    assert main([]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(DOCS.read_text(encoding="utf-8"))


def test_schema_accepts_default_flows_and_docs_example():
    validator = jsonschema.Draft202012Validator(flow_file_schema())
    validator.validate(json.loads(json.dumps(read_yaml(DEFAULT_FLOWS))))
    validator.validate(
        {"flows": {"a": {"nlu_trigger": ["greet", {"intent": "hi"}], "steps": [{"noop": True}]}}}
    )


@pytest.mark.parametrize(
    "flow",
    [
        {"steps": []},
        {"steps": [{"jump": "x"}]},
        {"stepz": [], "steps": [{"noop": True}]},
        {"steps": [{"escalate": {"reason": "x", "priority": "asap"}}]},
        {"events": ["birthday"], "steps": [{"noop": True}]},
    ],
)
def test_schema_refuses_bad_flows(flow):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"flows": {"a": flow}}, flow_file_schema())


def test_reference_example_in_docs_loads_and_matches_the_schema(tmp_path):
    from bot.flows import load_flows

    text = (DOCS.parent / "flows.md").read_text(encoding="utf-8")
    example = text.split("## A flow", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yml"
    path.write_text(example, encoding="utf-8")
    flows = load_flows([path])
    flow = flows["birthday_shoutout"]
    assert [s.kind for s in flow.steps] == [
        "collect", "collect", "action", "set_slots", "noop", "action", "link", "call", "escalate"
    ]  # fmt: skip
    jsonschema.validate(json.loads(json.dumps(read_yaml(path))), flow_file_schema())
