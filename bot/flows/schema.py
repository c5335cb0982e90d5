"""JSON Schema of flow files, generated from the same pydantic models the loader validates with.

Editors use it for completion and inline errors (`# yaml-language-server: $schema=...`); it is
regenerated with `python -m bot.flows.schema > docs/flows.schema.json`, and a test checks that
the committed file is current.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bot.flows.model import Domain, FlowFile

SCHEMA_ID = "https://fanline.dev/schemas/flows.schema.json"


def flow_file_schema() -> dict[str, Any]:
    schema = FlowFile.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "Fanline flow file"
    # The loader also accepts `- greet` and `- intent: greet` (see NluTrigger); say so here.
    defs = schema["$defs"]
    defs["Flow"]["properties"]["nlu_trigger"]["items"] = {
        "anyOf": [{"$ref": "#/$defs/NluTrigger"}, {"type": "string"}]
    }
    defs["NluTrigger"]["properties"]["intent"] = {
        "anyOf": [{"$ref": "#/$defs/IntentTrigger"}, {"type": "string"}]
    }
    # durations and times of day are written as in the YAML ("3d", "09:00"), not ISO 8601
    duration = {"type": "string", "pattern": "^\\s*\\d+\\s*(m|min|h|d|w)\\s*$"}
    defs["WaitStep"]["properties"]["wait"] = duration
    timed = defs["TimedTrigger"]["properties"]
    for key in ("after_signup", "no_reply_after"):
        timed[key] = {"anyOf": [duration, {"type": "null"}], "default": None}
    timed["on_birthday"] = {
        "anyOf": [{"type": "string", "pattern": "^\\d{1,2}:\\d{2}$"}, {"type": "null"}],
        "default": None,
    }
    return schema


def domain_schema() -> dict[str, Any]:
    schema = Domain.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Fanline domain file"
    return schema


def main(argv: list[str]) -> int:
    schema = domain_schema() if "--domain" in argv else flow_file_schema()
    sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
