"""Conversation tests (`tests/conversations/*.yml`): scripted fans against the real pipeline.

Each test case gets a fresh phone number and runs through `Pipeline.handle_inbound` on a real
database, so a passing test means the same turn passes in production. Steps, in the spirit of
Rasa's end-to-end tests: user, bot, bot_contains, utter, not_utter, intent, slot_was_set,
escalated, no_reply. Steps that set the scene instead: `broadcast: "text"` (the fan got that
broadcast, so their next text is a reply to it), `team: offline | at_work` (cases run in team
hours unless they say so, whatever the clock says) and `agent: claim | unassign | resolve` (a
person takes the thread, puts it back in the queue, hands it back). `clock: +1d` (or a
date-time with its zone) moves the case's clock and runs the timed-flow scheduler's pass for
the fan at that time: its texts are the "bot" of the steps after it. Rasa test stories
(`stories:` with `user:` steps) run as they are (`bot.rasa.stories`).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain import ConsentChange, TurnRecord
from bot.errors import ConfigError, Location
from bot.flows import read_yaml
from bot.flows.durations import parse_duration
from bot.messages import InboundSms, utcnow
from bot.pipeline import TurnOutcome
from bot.runtime import Runtime

OUR_NUMBER = "+15550100000"
STEP_KINDS = {
    "user",
    "broadcast",
    "bot",
    "bot_contains",
    "utter",
    "not_utter",
    "intent",
    "slot_was_set",
    "escalated",
    "no_reply",
    "tagged",
    "team",
    "agent",
    "clock",
}
SCENE = {"team", "agent"}
_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    file: str
    line: int | None
    fan: dict[str, Any]
    steps: tuple[tuple[str, Any, int | None], ...]


@dataclass(slots=True)
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(paths: list[Path]) -> list[Case]:
    """`test_cases:` files, and Rasa test stories (`stories:` with `user:` steps) as they are."""
    cases: list[Case] = []
    for path in paths:
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError("a conversation test file is a mapping", Location(str(path)))
        for raw in data.get("test_cases") or []:
            cases.append(_case(raw, str(path)))
        if "stories" in data:
            cases += _rasa_cases(path)
    return cases


def _rasa_cases(path: Path) -> list[Case]:
    from bot.rasa.stories import is_test_story, read_stories, to_test_case

    cases = []
    for story in read_stories(path):
        if not is_test_story(story):
            continue  # a training story (no `user:` texts) is no test
        raw, _ = to_test_case(story)
        steps = tuple(
            (kind, value, line)
            for step, line in zip(raw["steps"], raw["_lines"], strict=True)
            for kind, value in step.items()
        )
        cases.append(Case(raw["test_case"], str(path), story.line, {}, steps))
    return cases


def _case(raw: Any, file: str) -> Case:
    line = getattr(raw, "line", None)
    if not isinstance(raw, dict) or "test_case" not in raw:
        raise ConfigError("each item needs a `test_case` name", Location(file, line))
    steps = []
    for i, step in enumerate(raw.get("steps") or []):
        step_line = (getattr(raw.get("steps"), "item_lines", None) or [None] * (i + 1))[i]
        if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEP_KINDS:
            raise ConfigError(
                f"a step is one of {', '.join(sorted(STEP_KINDS))}",
                Location(file, step_line, raw["test_case"]),
            )
        kind, value = next(iter(step.items()))
        steps.append((kind, value, step_line))
    return Case(str(raw["test_case"]), file, line, dict(raw.get("fan") or {}), tuple(steps))


async def run_case(runtime: Runtime, case: Case) -> CaseResult:
    result = CaseResult(case)
    phone = f"+1555{next(_numbers) % 10_000_000:07d}"
    phone = await _fresh_fan(runtime, phone, case.fan)
    last: TurnOutcome | None = None
    replies: list[str] = []
    clock = Clock(utcnow())
    _team(runtime, "at_work")
    for kind, value, line in case.steps:
        where = f"{case.file}:{line}" if line else case.file
        if kind == "clock":
            try:
                at = clock.move(value)
            except ValueError as exc:
                result.failures.append(f"{where}: {exc}")
                break
            last = await _timed_pass(runtime, phone, at)
            replies = [q.reply.body for q in last.replies]
            continue
        if kind in SCENE:
            problem = await _scene(runtime, kind, str(value), phone)
            if problem:
                result.failures.append(f"{where}: {problem}")
                break
            continue
        if kind == "user":
            msg = InboundSms(f"TEST{uuid.uuid4().hex}", phone, OUR_NUMBER, str(value or ""))
            last = await runtime.handle(msg)
            replies = [q.reply.body for q in last.replies]
            continue
        if kind == "broadcast":
            await _broadcast(runtime, phone, str(value))
            continue
        if last is None:
            result.failures.append(f"{where}: `{kind}` before any `user` step")
            break
        problem = _check(kind, value, last, replies)
        if problem:
            result.failures.append(f"{where}: {problem}")
    return result


@dataclass(slots=True)
class Clock:
    """A case's clock: starts now; `+30m`, `+1d` move it on, a date-time with a zone sets it."""

    at: datetime

    def move(self, value: Any) -> datetime:
        if isinstance(value, datetime) or not str(value).startswith("+"):
            when = value if isinstance(value, datetime) else _datetime(str(value))
            if when.tzinfo is None:
                raise ValueError("a clock date-time needs its zone, e.g. 2027-03-14T10:00-04:00")
            self.at = when.astimezone(UTC)
        else:
            self.at += parse_duration(str(value)[1:])
        return self.at


def _datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"clock is +<duration> (+1d) or a date-time, not {text!r}") from None


async def _timed_pass(runtime: Runtime, phone: str, at: datetime) -> TurnOutcome:
    """The scheduler's pass at `at` for this fan alone; its turns' texts and events as one."""
    from bot.audience.scheduler import TimedFlows

    contact = await runtime.store.contact_by_phone(phone)
    if contact is None:
        return TurnOutcome(0, 0)
    outcomes = await TimedFlows(runtime.pipeline).run_pass(at, contact_id=contact.id)
    replies = tuple(q for o in outcomes for q in o.replies)
    events = tuple(e for o in outcomes for e in o.events)
    return TurnOutcome(0, contact.id, replies, events=events)


def _team(runtime: Runtime, value: str) -> None:
    """Pin the team clock: at work always, or offline until an hour six hours from now."""
    from dataclasses import replace

    from bot.escalation import TeamClock
    from bot.settings import TeamHours

    hours = None
    if value == "offline":
        opens = (utcnow().hour + 6) % 24
        hours = TeamHours("UTC", tuple(range(7)), f"{opens:02d}:00", f"{(opens + 1) % 24:02d}:00")
    pipeline = runtime.pipeline
    pipeline.escalations = replace(pipeline.escalations, clock=TeamClock(hours))


async def _scene(runtime: Runtime, kind: str, value: str, phone: str) -> str | None:
    if kind == "team":
        if value not in ("offline", "at_work"):
            return "team is offline or at_work"
        _team(runtime, value)
        return None
    from bot.inbox import queue
    from bot.inbox.auth import Agent
    from bot.storage import inbox_store

    actions = {"claim": queue.claim, "resolve": queue.resolve,
               "unassign": lambda db, cid, agent: queue.reassign(db, cid, agent, None)}  # fmt: skip
    if value not in actions:
        return f"agent is one of {', '.join(actions)}"
    db = runtime.store.db
    contact = await runtime.store.contact_by_phone(phone)
    if contact is None:
        return "no fan yet: a `user` step first"
    row = await db.run(inbox_store.agent_by_username, "test-agent")
    if row is None:  # an account nobody can log in to (no password hash matches "!")
        row = await db.run(inbox_store.insert_agent, {
            "username": "test-agent", "display_name": "Test Agent", "password_hash": "!",
            "role": "admin", "active": True, "created_at": utcnow()})  # fmt: skip
    agent = Agent(row["id"], row["username"], row["display_name"], row["role"])
    cid = await db.run(inbox_store.conversation_of_contact, contact.id)
    await actions[value](db, cid, agent)
    return None


def _check(kind: str, value: Any, outcome: TurnOutcome, replies: list[str]) -> str | None:
    said = [d.get("response") for t, d in outcome.events if t == "utter"]
    if kind == "bot":
        return (
            None
            if str(value) in replies
            else f"expected the bot to say {value!r}; it said {replies!r}"
        )
    if kind == "bot_contains":
        ok = any(str(value).lower() in r.lower() for r in replies)
        return None if ok else f"no reply contains {value!r}; replies: {replies!r}"
    if kind == "utter":
        # Rasa's retrieval action: `utter_faq` passes when the bot said any `utter_faq/<key>`
        ok = value in said or any(str(s).startswith(f"{value}/") for s in said)
        return None if ok else f"expected {value}; the bot uttered {said!r}"
    if kind == "not_utter":
        return None if value not in said else f"expected no {value}; the bot uttered {said!r}"
    if kind == "intent":
        got = outcome.prediction.intent if outcome.prediction else None
        return None if got == value else f"expected intent {value!r}, got {got!r}"
    if kind == "slot_was_set":
        return _check_slots(value, outcome)
    if kind == "escalated":
        esc = outcome.escalation
        if value is False:
            return None if esc is None else f"expected no escalation, got {esc['reason']!r}"
        if esc is None:
            return "expected an escalation; there was none"
        return (
            None
            if value is True or esc["reason"] == value
            else f"escalated with {esc['reason']!r}, expected {value!r}"
        )
    if kind == "no_reply":
        return None if not replies or not value else f"expected silence; the bot said {replies!r}"
    if kind == "tagged":  # `tagged: denver` or a list: the turn added these tags to the fan
        tagged = {d["tag"] for t, d in outcome.events if t == "tagged"}
        want = {str(v).lower() for v in (value if isinstance(value, list) else [value])}
        return None if want <= tagged else f"expected tags {sorted(want)}; tagged {sorted(tagged)}"
    return f"unknown step {kind}"


def _check_slots(value: Any, outcome: TurnOutcome) -> str | None:
    """`- name` (Rasa's form: any value) or `- name: value`; `- name: null` (Rasa's too) means
    the turn cleared it."""
    set_now = {d["name"]: d["value"] for t, d in outcome.events if t == "slot_set"}
    expected = value if isinstance(value, list) else [value]
    for item in expected:
        pairs = item.items() if isinstance(item, dict) else [(item, _ANY)]
        for name, want in pairs:
            if name not in set_now:
                return f"slot {name!r} was not set; set: {sorted(set_now)}"
            got = set_now[name]
            if want is _ANY:
                continue
            if (got is None) != (want is None) or str(got) != str(want):
                return f"slot {name!r} = {got!r}, expected {want!r}"
    return None


_ANY = object()  # `slot_was_set: [name]`: any value


async def _broadcast(runtime: Runtime, phone: str, body: str) -> None:
    """A broadcast text sent to the fan just now, as the broadcast enqueuer writes it."""
    from bot.messages import OutboundSms
    from bot.storage.store import now

    store = runtime.store
    contact = await store.contact_by_phone(phone)
    if contact is None:  # a fan the case has not created yet: make them (subscribed) first
        phone = await _fresh_fan(runtime, phone, {})
        contact = await store.contact_by_phone(phone)
    reply = OutboundSms(phone, body, kind="broadcast")
    await store.db.run(
        lambda c: store._enqueue(c, contact.id, [reply], now(), None, broadcast_id=1)
    )


async def _fresh_fan(runtime: Runtime, phone: str, fan: dict[str, Any]) -> str:
    """Create the fan as the case describes (subscribed by default: most cases skip opt-in)."""
    if not fan.get("subscribed", True):
        return phone
    from bot.storage.store import now

    store = runtime.store
    recorded = await store.record_inbound(
        InboundSms(f"SETUP{uuid.uuid4().hex}", phone, OUR_NUMBER, "", received_at=now())
    )
    ctx = await store.load_turn(recorded.contact.id)
    await store.finish_turn(
        TurnRecord(
            recorded.contact.id,
            ctx.conversation_id,
            recorded.message_id,
            events=[("test_fixture", {})],
            profile_updates={k: v for k, v in fan.items() if k != "subscribed"},
            consent=ConsentChange("opt_in", "test_fixture"),
        )
    )
    return phone


def discover(project_dir: Path) -> list[Path]:
    return sorted((project_dir / "tests" / "conversations").glob("*.yml"))
