"""Plain value types that travel along the message's path (channel -> pipeline -> outbox)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# C0 controls other than tab and newlines, DEL, C1 controls (U+0080-U+009F: e.g. U+009B, a
# terminal's escape), lone surrogates and noncharacters: no fan types them, PostgreSQL cannot
# store NUL, a surrogate cannot even be encoded as UTF-8, and YAML refuses C1 (teaching a topic)
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def utcnow() -> datetime:
    return datetime.now(UTC)


def clean_text(text: str) -> str:
    """Text as it may be stored and shown: invalid code points become U+FFFD, nothing is lost."""
    return _INVALID.sub(REPLACEMENT, text) if _INVALID.search(text) else text


@dataclass(frozen=True, slots=True)
class InboundSms:
    """One text from a fan, as the channel received it."""

    channel_id: str  # Twilio MessageSid (or a generated id for shell/simulator); idempotency key
    sender: str  # the fan's number, E.164
    recipient: str  # our number (or Messaging Service), E.164
    body: str
    media_urls: tuple[str, ...] = ()
    opt_out_type: str | None = None  # Twilio Advanced Opt-Out: STOP / START / HELP
    received_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        # the one door every text comes in by (webhook, simulator, shell): cleaned once, here
        object.__setattr__(self, "body", clean_text(self.body))


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One text the engine wants to send; the outbox turns it into a row and sends it after commit."""

    to: str
    body: str
    media_urls: tuple[str, ...] = ()
    sender: str | None = None  # None: the configured default number / Messaging Service
    kind: str = "reply"  # reply | agent | broadcast | system


@dataclass(frozen=True, slots=True)
class Entity:
    entity: str
    value: Any
    start: int | None = None
    end: int | None = None
    role: str | None = None
    group: str | None = None
    extractor: str | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the NLU made of a text."""

    text: str
    intent: str | None  # None or "out_of_scope" when nothing fits
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[Entity, ...] = ()
    retrieval_intent: str | None = None  # "faq/ask_x" for retrieval intents
    uncovered: tuple[str, ...] = ()  # content words the intent never speaks of (bot.nlu.evidence)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A status callback from the provider."""

    channel_id: str
    status: str  # queued | sending | sent | delivered | undelivered | failed | read
    error_code: int | None = None
