"""Timed flows in content: `trigger:` and `wait` steps load, run in the engine and point at
their lines when wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flow_helpers import write

from bot.errors import ValidationFailed
from bot.flows import DialogueState, FlowEnded, Frame, Say, TurnInput, Wait, load_flows
from bot.flows.durations import parse_duration

SERIES = """
flows:
  series:
    trigger:
      after_signup: 1h
    steps:
      - action: utter_ask_name
      - wait: 3d
      - action: utter_ask_zip
"""


def test_triggers_and_waits_load(tmp_path):
    flows = load_flows([write(tmp_path, "f.yml", SERIES)])
    trigger = flows["series"].trigger
    assert trigger is not None and trigger.kind == "after_signup"
    assert trigger.after_signup == timedelta(hours=1)
    assert flows["series"].steps[1].wait == timedelta(days=3)  # type: ignore[attr-defined]
    assert parse_duration("30m") == timedelta(minutes=30)


def test_a_wait_steps_aside_and_the_flow_goes_on_after_it(make_engine):
    engine = make_engine(SERIES)
    first = engine.start_timed(DialogueState(), "series", TurnInput(text=""))
    says = [c.response for c in first.commands if isinstance(c, Say)]
    (wait,) = [c for c in first.commands if isinstance(c, Wait)]
    assert says == ["utter_ask_name"] and wait == Wait("series", "1_wait", 3 * 86400)
    assert first.state.stack == ()  # the fan is free meanwhile
    assert FlowEnded("series", "waiting") in first.commands
    later = engine.start_timed(DialogueState(), "series", TurnInput(text=""), after_step="1_wait")
    assert [c.response for c in later.commands if isinstance(c, Say)] == ["utter_ask_zip"]
    # a flow already in the conversation is not started twice
    busy = DialogueState(stack=(Frame("series", "0_action_utter_ask_name"),))
    assert engine.start_timed(busy, "series", TurnInput(text="")).commands == ()


def test_a_timed_flow_starts_only_for_fans_its_if_admits(make_engine):
    engine = make_engine(
        SERIES.replace("    trigger:", "    if: \"'vinyl' in fan.tags\"\n    trigger:")
    )
    fan = {"tags": ["vinyl"]}
    assert engine.start_timed(DialogueState(), "series", TurnInput(text="", fan=fan)).commands
    assert engine.start_timed(DialogueState(), "series", TurnInput(text="")).commands == ()


@pytest.mark.parametrize(
    ("yaml", "line", "key", "message"),
    [
        ("trigger: {after_signup: soon}", 4, "trigger.after_signup", "not a duration"),
        ("trigger: {on_birthday: '25:00'}", 4, "trigger.on_birthday", "not a time of day"),
        ("trigger: {at: 2026-12-24T10:00:00}", 4, "trigger.at", "needs a zone"),
        ("trigger: {after_signup: 1h, tagged: vinyl}", 4, "trigger", "exactly one of"),
        ("trigger: {no_reply_after: 2d}", 4, "trigger", "broadcast: N"),
    ],
)
def test_trigger_errors_name_file_and_line(tmp_path, yaml, line, key, message):
    text = f"flows:\n  timed:\n    description: x\n    {yaml}\n    steps:\n      - action: utter_ask_name\n"
    path = write(tmp_path, "f.yml", text)
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([path])
    (problem,) = excinfo.value.problems
    assert problem.location.file == str(path)
    assert problem.location.line == line
    assert (problem.location.key or "").startswith(f"flows.timed.{key}")
    assert message in problem.message


def test_a_wait_longer_than_a_week_is_refused_at_its_line(tmp_path):
    text = "flows:\n  f:\n    steps:\n      - action: utter_ask_name\n      - wait: 8d\n"
    with pytest.raises(ValidationFailed) as excinfo:
        load_flows([write(tmp_path, "f.yml", text)])
    (problem,) = excinfo.value.problems
    assert problem.location.line == 5 and "at most 7d" in problem.message
