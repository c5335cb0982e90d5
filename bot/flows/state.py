"""Values the flow engine takes and returns: dialogue state, one turn's input, commands, progress.

The pipeline loads a `DialogueState` with the conversation (step 4 of the message path), hands
the engine a `TurnInput` (step 7), and carries out the returned `Progress.commands` (steps 7-9):
`Say` becomes an outbound SMS, `RunAction` a custom action, `HandOff` an escalation, and the
`Flow*`/`StepTaken`/`SetSlot` commands rows of the event log. `DialogueState.recent` keeps the
entities of the fan's last few texts (`bot.flows.listening`), so a city named before a
"Did you mean ...?" still fills the location asked after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bot.messages import Prediction

STATE_VERSION = 1


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Frame:
    """One flow in progress. `step_id` is the step last taken (None: not started yet)."""

    flow_id: str
    step_id: str | None = None
    retries: int = 0
    interrupted: bool = False  # another flow was started on top while this one asked a question
    reason: str | None = None  # escalation reason a pattern was started with (e.g. retry_limit)
    asks: int = 0  # times the waiting question was asked (a collect's `max_asks`)
    quiet: int = 0  # interruptions answered since it was last asked (`reask_every`)

    def taken(self, step_id: str) -> Frame:
        """The frame once `step_id` is taken: its counters start again. A step is taken several
        times a turn, and `dataclasses.replace` costs several times this constructor call."""
        return Frame(self.flow_id, step_id, 0, self.interrupted, self.reason, 0, 0)


@dataclass(frozen=True, slots=True)
class DialogueState:
    stack: tuple[Frame, ...] = ()
    slots: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # entities of the last texts, newest first: {"entity": "city", "value": "Denver", "age": 1}
    recent: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stack", tuple(self.stack))
        object.__setattr__(self, "slots", _frozen(self.slots))
        object.__setattr__(self, "recent", tuple(_frozen(e) for e in self.recent))

    @property
    def active(self) -> Frame | None:
        return self.stack[-1] if self.stack else None

    def to_json(self) -> dict[str, Any]:
        stack = [
            {
                "flow_id": f.flow_id,
                "step_id": f.step_id,
                "retries": f.retries,
                "interrupted": f.interrupted,
                "reason": f.reason,
                "asks": f.asks,
                "quiet": f.quiet,
            }
            for f in self.stack
        ]
        data = {"version": STATE_VERSION, "stack": stack, "slots": dict(self.slots)}
        if self.recent:
            data["recent"] = [dict(e) for e in self.recent]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DialogueState:
        if not data:
            return cls()
        frames = tuple(
            Frame(
                flow_id=f["flow_id"],
                step_id=f.get("step_id"),
                retries=int(f.get("retries", 0)),
                interrupted=bool(f.get("interrupted", False)),
                reason=f.get("reason"),
                asks=int(f.get("asks", 0)),
                quiet=int(f.get("quiet", 0)),
            )
            for f in data.get("stack", ())
        )
        recent = tuple(e for e in data.get("recent") or () if isinstance(e, Mapping))
        return cls(stack=frames, slots=data.get("slots") or {}, recent=recent)


@dataclass(frozen=True, slots=True)
class TurnInput:
    text: str
    prediction: Prediction | None = None
    event: str | None = None  # "first_contact" | "broadcast_reply"
    fan: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    num_media: int = 0
    seed: int = 0  # seeds the choice among response variants (deterministic in tests)
    broadcast_text: str | None = None  # the broadcast this text replies to ("... Reply VIP")


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    media_urls: tuple[str, ...] = ()
    response: str | None = None


@dataclass(frozen=True, slots=True)
class SetSlot:
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class RunAction:
    name: str


@dataclass(frozen=True, slots=True)
class HandOff:
    reason: str
    priority: str = "normal"


@dataclass(frozen=True, slots=True)
class Subscribe:
    method: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    pass


@dataclass(frozen=True, slots=True)
class FlowStarted:
    flow_id: str
    trigger: str  # keyword:BDAY | intent:greet | event:first_contact | link | call | pattern


@dataclass(frozen=True, slots=True)
class FlowEnded:
    flow_id: str
    outcome: str  # completed | linked | cancelled | escalated | error


@dataclass(frozen=True, slots=True)
class StepTaken:
    flow_id: str
    step_id: str


@dataclass(frozen=True, slots=True)
class Wait:
    """A `wait` step: the flow leaves the stack; the scheduler resumes it after `delay_s`."""

    flow_id: str
    step_id: str  # the wait step (the flow goes on with the step after it)
    delay_s: float


@dataclass(frozen=True, slots=True)
class TagFan:
    """The fan joins a sub-list: a keyword flow's `tag:` (source keyword) or a `tag:` step."""

    tag: str
    source: str  # keyword | flow


Command = (
    Say | SetSlot | RunAction | HandOff | Subscribe | Unsubscribe | FlowStarted | FlowEnded
    | StepTaken | Wait | TagFan
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Progress:
    state: DialogueState
    commands: tuple[Command, ...]
    pending_action: str | None = None  # the engine stopped at this RunAction; call resume()

    def says(self) -> list[str]:
        return [c.text for c in self.commands if isinstance(c, Say)]
