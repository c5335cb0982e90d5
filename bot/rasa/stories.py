"""Rasa stories, rules and test stories (`stories:`, `rules:`) -> plain steps with their lines.

Content time only. `read_stories` parses a file; `to_test_case` turns a test story (steps with
`user:` texts) into one of Fanline's conversation tests, used both by `fanline test` on a Rasa
test file and by `fanline import rasa`. Whatever has no counterpart is returned as a note with
its line, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Location
from bot.flows.loader import read_yaml
from bot.nlu.markup import MarkupError, parse_markup

STEP_KEYS = ("intent", "action", "bot", "slot_was_set", "active_loop", "checkpoint", "or")
# actions with no visible effect in a test: listening, and Rasa's housekeeping
SILENT_ACTIONS = {"action_listen", "action_restart", "action_session_start", "...", "action_back"}


@dataclass(frozen=True, slots=True)
class StoryStep:
    kind: str  # one of STEP_KEYS
    value: Any
    line: int | None
    user: str | None = None  # test stories: what the fan typed (markup removed)
    entities: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Story:
    kind: str  # "story" | "rule"
    name: str
    file: str
    line: int | None
    steps: tuple[StoryStep, ...]
    condition: tuple[Any, ...] = ()
    wait_for_user_input: bool = True
    conversation_start: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    def where(self, line: int | None = None) -> Location:
        return Location(self.file, line or self.line, self.name)


def read_stories(path: Path) -> list[Story]:
    """Stories and rules of one file (empty when it has none); errors name file and line."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        return []
    found = []
    for key, kind in (("stories", "story"), ("rules", "rule")):
        items = data.get(key) or []
        lines = getattr(items, "item_lines", [None] * len(items))
        for item, line in zip(items, lines, strict=False):
            found.append(_story(item, kind, str(path), line))
    return found


def _story(raw: Any, kind: str, file: str, line: int | None) -> Story:
    if not isinstance(raw, dict) or not isinstance(raw.get(kind), str | int):
        raise ConfigError(f"each item needs a `{kind}` name", Location(file, line))
    steps_raw = raw.get("steps") or []
    lines = getattr(steps_raw, "item_lines", [None] * len(steps_raw))
    steps, notes = [], []
    for step, step_line in zip(steps_raw, lines, strict=False):
        parsed = _step(step, step_line, file)
        if parsed is None:
            notes.append(f"{file}:{step_line}: step not understood: {dict(step or {})!r}")
        else:
            steps.append(parsed)
    return Story(
        kind, str(raw[kind]), file, line, tuple(steps), tuple(raw.get("condition") or ()),
        raw.get("wait_for_user_input", True) is not False, bool(raw.get("conversation_start")),
        tuple(notes),
    )  # fmt: skip


def _step(raw: Any, line: int | None, file: str) -> StoryStep | None:
    if not isinstance(raw, dict):
        return None
    kinds = [k for k in STEP_KEYS if k in raw]
    if not kinds:
        if "user" in raw:  # an end-to-end step without an intent: the text alone
            return StoryStep("intent", None, line, _text(raw["user"], line, file)[0])
        return None
    kind = kinds[0]
    user, entities = (None, ())
    if "user" in raw:
        user, entities = _text(raw["user"], line, file)
    return StoryStep(kind, raw[kind], line, user, tuple(raw.get("entities") or entities))


def _text(raw: Any, line: int | None, file: str) -> tuple[str, tuple[Any, ...]]:
    try:
        text, entities = parse_markup(str(raw).strip())
    except MarkupError as exc:
        raise ConfigError(str(exc), Location(file, line, "user")) from None
    return text, tuple(entities)


def is_test_story(story: Story) -> bool:
    return any(s.user is not None for s in story.steps)


def to_test_case(story: Story, forms: set[str] = frozenset()) -> tuple[dict[str, Any], list[str]]:
    """A conversation test (`{test_case, steps}`) from a Rasa test story, and what was left out.

    Each `user` becomes a user step (and its `intent` an intent check); `utter_*` actions and
    `bot:` texts become checks of that turn's replies; custom actions, forms and slots are left
    to the flows the test exercises and are listed as notes.
    """
    steps: list[dict[str, Any]] = []
    lines: list[int | None] = []  # the Rasa line of each step, for failures (not written out)
    notes: list[str] = list(story.notes)
    started = False
    running: str | None = None  # a form the story runs, since its last `- action: <form>`
    for step in story.steps:
        where = f"{story.file}:{step.line}"
        if step.kind == "action" and step.value in forms:
            running = str(step.value)
        elif step.user is not None or step.kind == "intent":
            running = None
        elif step.kind == "active_loop" and step.value is None and running:
            # `rasa test` takes a form's events from the story; a fan's conversation has the
            # form ask until it is answered
            notes.append(f"{where}: form {running} ends here with no answer from the fan: "
                         "Fanline runs the form, which asks; checks after this line may fail")  # fmt: skip
            running = None
        if step.user is not None:
            steps.append({"user": step.user})
            started = True
            if step.kind == "intent" and step.value:
                steps.append({"intent": str(step.value).split("/")[0]})
            lines += [step.line] * (len(steps) - len(lines))
            continue
        if step.kind == "intent" and step.value:
            # an intent without a text: Rasa's test sends the intent itself, as a button would
            steps.append({"user": _payload(step)})  # the intent is the payload's: no check
            lines += [step.line] * (len(steps) - len(lines))
            started = True
            continue
        if not started:
            notes.append(f"{where}: {step.kind} before any user text: not checked")
            continue
        check = _check(step, forms)
        if isinstance(check, str):
            notes.append(f"{where}: {check}")
        elif check is not None:
            steps.append(check)
            lines.append(step.line)
    return {"test_case": _case_name(story.name), "steps": steps, "_lines": lines}, notes


def _payload(step: StoryStep) -> str:
    """`/intent{"entity": "value"}`, as Rasa writes a button's payload."""
    values: dict[str, Any] = {}
    for item in step.entities:
        if isinstance(item, dict) and "entity" in item:
            values[str(item["entity"])] = item.get("value")
        elif isinstance(item, dict):
            values.update({str(k): v for k, v in item.items()})
    return f"/{step.value}" + (json.dumps(values) if values else "")


def _check(step: StoryStep, forms: set[str]) -> dict[str, Any] | str | None:
    if step.kind == "action":
        name = str(step.value)
        if name.startswith("utter_"):
            return {"utter": name}
        if name in SILENT_ACTIONS:
            return None
        if name in forms:
            return None  # the form's questions are checked by the utter_ask_* steps around it
        return f"custom action {name} is run by the flow, not checked by the test"
    if step.kind == "bot":
        return {"bot": str(step.value).strip()}
    if step.kind == "slot_was_set":
        items = step.value if isinstance(step.value, list) else [step.value]
        return {"slot_was_set": [dict(i) if isinstance(i, dict) else i for i in items]}
    if step.kind == "active_loop":
        return None  # form bookkeeping: the collect steps are what the fan sees
    return f"{step.kind} is not checked"


def _case_name(name: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "story"
