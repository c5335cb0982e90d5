"""Frame.taken: the engine's fast way of taking a step keeps every field replace() would."""

from dataclasses import fields, replace

from bot.flows.state import Frame


def test_taken_is_replace_with_the_counters_reset() -> None:
    # every field set away from its default, so a field added later and left out fails here
    values = {"flow_id": "f", "step_id": "s", "retries": 3, "interrupted": True,
              "reason": "retry_limit", "asks": 2, "quiet": 5}  # fmt: skip
    assert {f.name for f in fields(Frame)} == set(values)
    frame = Frame(**values)
    assert frame.taken("t") == replace(frame, step_id="t", retries=0, asks=0, quiet=0)
