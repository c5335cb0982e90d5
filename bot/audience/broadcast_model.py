"""Broadcast value types and the personalisation template (pure; shared by service and storage).

A template is text with `{field}` placeholders filled from the fan's profile (`{first_name}`),
optionally with a fallback for fans without one: `{first_name|friend}`. `{{` and `}}` are
literal braces; nothing else is interpreted. The storage layer compiles the same parts into SQL,
so a million personalised texts are written without a row passing through Python.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.audience.segments import Segment
from bot.audience.variants import ABTest, VariantStats
from bot.errors import ConfigError, Location
from bot.linkish import shown

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,63})(?:\|([^{}]{0,40}))?\}")
STATUSES = ("draft", "scheduled", "enqueuing", "sending", "paused", "cancelled", "failed",
            "completed")  # fmt: skip
# what `render` (and its SQL twin, broadcast_store.body_expr) can fill: the keys of a fan's
# profile (bot/audience/signup.py, the pipeline's profile slots); any other name renders as its fallback
FIELDS = frozenset({"first_name", "birthday", "email", "zip", "country", "timezone"})


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    fallback: str = ""


Part = str | Placeholder


def parse_template(text: str) -> tuple[Part, ...]:
    """Split a broadcast text into literal parts and placeholders; stray braces are errors."""
    parts: list[Part] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        literal = text[pos : m.start()]
        if "{" in literal or "}" in literal:
            break
        parts.append(literal)
        token = m.group(0)
        parts.append(
            token[0] if token in ("{{", "}}") else Placeholder(m.group(1), m.group(2) or "")
        )
        pos = m.end()
    else:
        tail = text[pos:]
        if "{" not in tail and "}" not in tail:
            parts.append(tail)
            return tuple(p for p in parts if p != "")
    raise ConfigError(
        "a `{` or `}` that is not a placeholder: write {first_name}, {first_name|friend}, "
        "or {{ and }} for literal braces",
        Location("broadcast text", None, "body"),
    )


def check_template(text: str, *, echo: bool = True) -> tuple[Part, ...]:
    """`parse_template` for a new text: a `{name}` that is not a profile field is an error, as
    `fanline validate` refuses one in domain.yml (else "Hi {frist_name}!" reaches fans "Hi !").
    `echo=False` (HTTP answers) leaves the unknown name out of the message."""
    parts = parse_template(text)
    for p in parts:
        if isinstance(p, Placeholder) and p.name not in FIELDS:
            close = difflib.get_close_matches(p.name, sorted(FIELDS), n=1)
            hint = f"did you mean {{{close[0]}}}? " if close else ""
            raise ConfigError(
                f"unknown placeholder{f' {{{p.name}}}' if echo else ''}: {hint}"
                "a text to many fans can use " + ", ".join(f"{{{f}}}" for f in sorted(FIELDS)),
                Location("broadcast text", None, "body"),
            )
    return parts


def render(parts: tuple[Part, ...], profile: dict[str, Any]) -> str:
    out = []
    for part in parts:
        if isinstance(part, Placeholder):
            value = shown(part.name, profile.get(part.name))  # a link-like name: the fallback
            out.append(str(value) if value not in (None, "") else part.fallback)
        else:
            out.append(part)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class NewBroadcast:
    name: str
    body: str
    segment: Segment
    media_urls: tuple[str, ...] = ()
    sender: str | None = None
    rate: float = 10.0  # messages per second (the sender's throughput)
    quiet_start: str = "08:00"
    quiet_end: str = "21:00"
    default_zone: str = "America/New_York"
    ab: ABTest | None = None  # A/B variants (bot.audience.variants); `body` is variant A


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    name: str
    body: str
    media_urls: tuple[str, ...]
    segment: Segment
    status: str
    sender: str | None
    rate: float
    quiet_start: str
    quiet_end: str
    default_zone: str
    send_at: datetime | None
    cursor: int
    enqueued: int
    created_at: datetime
    started_at: datetime | None = None
    enqueued_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None  # why a `failed` broadcast failed
    ab: ABTest | None = None
    decide_at: datetime | None = None  # A/B: when the winner is chosen
    winner_sent_at: datetime | None = None  # A/B: the rest's texts began


@dataclass(frozen=True, slots=True)
class Preview:
    """What a broadcast would cost, before it is sent."""

    recipients: int
    sample: tuple[str, ...]  # a few personalised texts (no phone numbers)
    segments_per_text: float  # average over the sample
    max_segments: int  # with the longest profile values in the segment
    encoding: str
    estimated_segments: int
    estimated_cost: float
    held_now: int  # recipients whose quiet hours would hold the text right now


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    broadcast_id: int
    status: str
    recipients: int  # rows in broadcast_recipients
    by_status: dict[str, int] = field(default_factory=dict)  # message status -> count
    failed_by_code: dict[str, int] = field(default_factory=dict)  # Twilio error code -> count
    opted_out_since: int = 0
    replied: int = 0
    segments_sent: int = 0
    error: str | None = None  # why a `failed` broadcast failed
    variants: tuple[VariantStats, ...] = ()  # A/B: sent, clicks, replies per variant
    clicks: int = 0  # fans who tapped a tracked link (people; previews and bots apart)

    def count(self, *statuses: str) -> int:
        return sum(self.by_status.get(s, 0) for s in statuses)

    @property
    def done(self) -> int:
        """Texts that left the queue for good: sent, delivered, failed, cancelled or skipped
        (over the fan's frequency cap)."""
        return self.count(
            "sent", "delivered", "undelivered", "failed", "cancelled", "read", "skipped"
        )
