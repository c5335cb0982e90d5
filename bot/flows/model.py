"""Pydantic models of the content files: `flows:` (flow files) and `slots:`/`responses:` (domain).

Content is loaded once at start-up (loader.py), before any message arrives; the engine and the
validator only read these models. Every model remembers where it came from (file, line, and the
line of each of its keys) so that later checks can name the place in the YAML.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import AfterValidator

from bot.audience.tags import normalise_tag
from bot.errors import Location
from bot.flows.conditions import check_expression
from bot.flows.durations import MAX_WAIT, parse_clock, parse_duration

END = "END"
STEP_KINDS = ("collect", "action", "set_slots", "link", "call", "escalate", "noop", "wait", "tag")
# what starts a flow in time (`trigger:`), read by bot.audience.scheduler
TIMED_TRIGGERS = ("after_signup", "on_birthday", "at", "no_reply_after", "on_click", "tagged")
EVENTS = ("first_contact", "broadcast_reply")
SLOT_TYPES = (
    "text", "bool", "float", "categorical", "date", "email", "postal_code", "location", "code",
    "person_name", "any",
)  # fmt: skip


def _check_condition(expr: str) -> str:
    check_expression(expr)  # raises ValueError, which pydantic reports at the key's line
    return expr


Condition = Annotated[str, AfterValidator(_check_condition)]


class Located(BaseModel):
    """Base: strict keys, and the file/line of the mapping and of each key it was read from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    _file: str = PrivateAttr(default="<memory>")
    _line: int | None = PrivateAttr(default=None)
    _key_lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_place(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        model = handler(data)
        if isinstance(model, Located):
            context = info.context or {}
            model._file = context.get("file", model._file)
            model._line = getattr(data, "line", None)
            model._key_lines = dict(getattr(data, "key_lines", {}))
        return model

    def where(self, key: str | None = None, *, path: str | None = None) -> Location:
        """Location of this mapping, or of one of its keys when `key` is given."""
        line = self._key_lines.get(key, self._line) if key else self._line
        label = ".".join(p for p in (path, key) if p) or None
        return Location(self._file, line, label)


# ---------------------------------------------------------------- flows


class IntentTrigger(Located):
    name: str
    confidence_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class NluTrigger(Located):
    intent: IntentTrigger

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        # Accept `- greet` and `- intent: greet` besides Rasa's `- intent: {name: greet}`.
        if isinstance(data, str):
            return {"intent": {"name": data}}
        if isinstance(data, dict) and isinstance(data.get("intent"), str):
            return {**data, "intent": {"name": data["intent"]}}
        return data


class NextIf(Located):
    if_: Condition = Field(alias="if")
    then: str


class NextElse(Located):
    else_: str = Field(alias="else")


def _branch_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        return "if branch" if "if" in data else "else branch" if "else" in data else None
    return "if branch" if isinstance(data, NextIf) else "else branch"


def _next_kind(data: Any) -> str:
    return "step id" if isinstance(data, str) else "branches"


Branch = Annotated[
    Annotated[NextIf, Tag("if branch")] | Annotated[NextElse, Tag("else branch")],
    Discriminator(
        _branch_kind,
        custom_error_type="next_branch",
        custom_error_message="a `next` branch is `{if: ..., then: step}` or `{else: step}`",
    ),
]
# Tags name the alternatives in error locations; they differ from YAML keys on purpose.
Next = Annotated[
    Annotated[str, Tag("step id")] | Annotated[list[Branch], Tag("branches")],
    Discriminator(_next_kind),
]


class Rejection(Located):
    if_: Condition = Field(alias="if")
    utter: str


class StepBase(Located):
    id: str | None = None
    description: str | None = None
    next: Next | None = None

    _auto_id: str = PrivateAttr(default="")

    @property
    def step_id(self) -> str:
        # the private attribute read where pydantic keeps it: `self._auto_id` first fails the
        # ordinary lookup (an AttributeError built and dropped) and then runs pydantic's
        # __getattr__, several times a turn
        return self.id or self.__pydantic_private__["_auto_id"]  # type: ignore[index]

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def is_collect(self) -> bool:
        return False


class CollectStep(StepBase):
    collect: str
    utter: str | None = None
    ask_before_filling: bool = False
    max_retries: int = Field(default=2, ge=0)
    # After an interruption is answered the question is asked again: only every `reask_every`-th
    # time, and never once it was asked `max_asks` times (the step then waits without asking).
    # 0: never asked here, the step before asked (a custom action's text and buttons, in Rasa).
    max_asks: int | None = Field(default=None, ge=0)
    reask_every: int = Field(default=1, ge=1)
    rejections: list[Rejection] = Field(default_factory=list)

    kind = property(lambda self: "collect")
    is_collect = property(lambda self: True)

    @property
    def question(self) -> str:
        return self.utter or f"utter_ask_{self.collect}"


class ActionStep(StepBase):
    action: str
    kind = property(lambda self: "action")


class SetSlotsStep(StepBase):
    set_slots: list[dict[str, Any]]
    kind = property(lambda self: "set_slots")

    @field_validator("set_slots", mode="before")
    @classmethod
    def _mapping_or_list(cls, value: Any) -> Any:
        # Rasa writes a list of one-key mappings; a plain mapping is accepted too.
        if isinstance(value, dict):
            return [{k: v} for k, v in value.items()]
        return value

    @property
    def assignments(self) -> list[tuple[str, Any]]:
        return [(k, v) for item in self.set_slots for k, v in item.items()]


class LinkStep(StepBase):
    link: str
    kind = property(lambda self: "link")


class CallStep(StepBase):
    call: str
    kind = property(lambda self: "call")


class Escalation(Located):
    reason: str
    priority: Literal["low", "normal", "high", "urgent"] = "normal"


class EscalateStep(StepBase):
    escalate: Escalation
    kind = property(lambda self: "escalate")


class NoopStep(StepBase):
    noop: Literal[True]
    kind = property(lambda self: "noop")


class WaitStep(StepBase):
    """`- wait: 3d`: the flow leaves the conversation and the scheduler resumes it after."""

    wait: timedelta
    kind = property(lambda self: "wait")

    @field_validator("wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        delay = parse_duration(value)
        if delay > MAX_WAIT:
            raise ValueError(f"a wait is at most 7d (got {value}): start a timed flow instead")
        return delay


class TagStep(StepBase):
    """`- tag: vinyl`: the fan joins the sub-list (fan_tags; `fan.tags` from the next turn)."""

    tag: str
    kind = property(lambda self: "tag")

    @field_validator("tag", mode="before")
    @classmethod
    def _tag_name(cls, value: Any) -> str:
        return normalise_tag(value)


def _step_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        found = [k for k in STEP_KINDS if k in data]
        return f"{found[0]} step" if len(found) == 1 else None
    if isinstance(data, StepBase):
        return f"{data.kind} step"
    return None


Step = Annotated[
    Annotated[CollectStep, Tag("collect step")]
    | Annotated[ActionStep, Tag("action step")]
    | Annotated[SetSlotsStep, Tag("set_slots step")]
    | Annotated[LinkStep, Tag("link step")]
    | Annotated[CallStep, Tag("call step")]
    | Annotated[EscalateStep, Tag("escalate step")]
    | Annotated[NoopStep, Tag("noop step")]
    | Annotated[WaitStep, Tag("wait step")]
    | Annotated[TagStep, Tag("tag step")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


class TimedTrigger(Located):
    """`trigger:` of a flow that starts in time rather than on a fan's text: exactly one of
    `after_signup: 1h`, `on_birthday: "09:00"` (the fan's local time), `at: <date-time with
    zone>`, `no_reply_after: 2d` (with `broadcast: N` or `flow: X`), `on_click: <broadcast id
    or any>`, `tagged: <tag>`."""

    after_signup: timedelta | None = None
    on_birthday: tuple[int, int] | None = None
    at: datetime | None = None
    no_reply_after: timedelta | None = None
    broadcast: int | None = None
    flow: str | None = None
    on_click: int | Literal["any"] | None = None
    tagged: str | None = None

    @field_validator("after_signup", "no_reply_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("on_birthday", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> tuple[int, int] | None:
        return None if value is None else parse_clock(value)

    @field_validator("at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("`at` needs a zone: write e.g. 2026-12-24T10:00:00-05:00")
        return value

    @field_validator("tagged")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return None if value is None else str(value).strip().lower()

    @model_validator(mode="after")
    def _one_kind(self) -> TimedTrigger:
        given = [k for k in TIMED_TRIGGERS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a trigger needs exactly one of: " + ", ".join(TIMED_TRIGGERS))
        if self.kind == "no_reply_after" and (self.broadcast is None) == (self.flow is None):
            raise ValueError("no_reply_after needs `broadcast: N` or `flow: X` (one of them)")
        if self.kind != "no_reply_after" and (self.broadcast, self.flow) != (None, None):
            raise ValueError("`broadcast` and `flow` go with no_reply_after")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TIMED_TRIGGERS if getattr(self, k) is not None)


class Flow(Located):
    name: str | None = None
    description: str = ""
    label: str | None = None  # a short name for "Did you mean 1) <label> or 2) ...?"
    nlu_trigger: list[NluTrigger] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    events: list[Literal["first_contact", "broadcast_reply"]] = Field(default_factory=list)
    if_: Condition | None = Field(default=None, alias="if")
    persisted_slots: list[str] | None = None
    trigger: TimedTrigger | None = None  # starts in time (bot.audience.scheduler)
    tag: str | None = None  # a fan who starts the flow joins this sub-list (`DENVER` -> denver)
    steps: list[Step] = Field(min_length=1)

    _id: str = PrivateAttr(default="")  # the `flows:` key, set by FlowFile

    @property
    def id(self) -> str:
        return self.__pydantic_private__["_id"]  # type: ignore[index,no-any-return]  # as step_id

    @field_validator("tag", mode="before")
    @classmethod
    def _tag_name(cls, value: Any) -> str | None:
        return None if value is None else normalise_tag(value)

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords_as_strings(cls, value: Any) -> Any:
        # YAML reads `keywords: [YES, 1]` as bool/int; a keyword is always text.
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

    @model_validator(mode="after")
    def _number_steps(self) -> Flow:
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            target = getattr(step, step.kind)
            suffix = f"_{target}" if isinstance(target, str) else ""
            step._auto_id = f"{index}_{step.kind}{suffix}"
            if step.step_id in seen or step.step_id == END:
                raise ValueError(f"step id {step.step_id!r} is used twice (or is reserved)")
            seen.add(step.step_id)
        return self

    @property
    def is_pattern(self) -> bool:
        return self.id.startswith("pattern_")

    def step(self, step_id: str) -> StepBase:
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.step_id == step_id)


class FlowFile(Located):
    """One flow file: `flows:` keyed by flow id (Rasa's `version:` is accepted)."""

    version: str | None = None
    flows: dict[str, Flow] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _name_flows(self) -> FlowFile:
        for flow_id, flow in self.flows.items():
            flow._id = flow_id
        return self


# ---------------------------------------------------------------- domain


class SlotCondition(Located):
    type: Literal["slot"] = "slot"
    name: str
    value: Any = None


class ResponseVariant(Located):
    text: str | None = None
    image: str | None = None
    buttons: list[Any] | None = None  # accepted for Rasa compatibility; SMS has no buttons
    condition: list[SlotCondition] = Field(default_factory=list)
    channel: str | None = None
    metadata: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None  # Rasa custom payloads: accepted, not sent (SMS)

    @model_validator(mode="after")
    def _has_content(self) -> ResponseVariant:
        if not self.text and not self.image:
            raise ValueError("a response variant needs `text` or `image`")
        return self


class Slot(Located):
    type: Literal[
        "text", "bool", "float", "categorical", "date", "email", "postal_code", "location", "code",
        "person_name", "any",
    ]  # fmt: skip
    values: list[str] | None = None
    initial_value: Any = None
    mappings: list[Any] | None = None  # Rasa: `from_entity` ones name entities that fill it
    influence_conversation: bool | None = None  # Rasa: accepted, ignored

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

    @model_validator(mode="after")
    def _categorical_values(self) -> Slot:
        if self.type == "categorical" and not self.values:
            raise ValueError("a categorical slot needs `values`")
        return self


class Domain(Located):
    """`domain.yml`: slots and responses (Rasa's `intents`, `entities`, `actions` are accepted)."""

    version: str | None = None
    slots: dict[str, Slot] = Field(default_factory=dict)
    responses: dict[str, list[ResponseVariant]] = Field(default_factory=dict)
    intents: list[Any] | None = None
    entities: list[Any] | None = None
    actions: list[str] | None = None
    session_config: dict[str, Any] | None = None
    # Rasa keys read but not run: forms become collect flows with `fanline import rasa`
    forms: dict[str, Any] | None = None
    e2e_actions: list[Any] | None = None
    config: dict[str, Any] | None = None  # Rasa's store_entities_as_slots: flows fill slots
