"""Plain value types that travel along the message's path (channel -> pipeline -> outbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


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


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A status callback from the provider."""

    channel_id: str
    status: str  # queued | sending | sent | delivered | undelivered | failed | read
    error_code: int | None = None
