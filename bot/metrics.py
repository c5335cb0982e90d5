"""Prometheus metrics: turns, latency, intents, escalations, sends, failures by error code, and
sends whose outcome is not known."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

TURNS = Counter("fanline_turns", "Inbound texts handled", ["outcome"], registry=REGISTRY)
TURN_SECONDS = Histogram(
    "fanline_turn_seconds",
    "Time from receipt to committed turn",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
INTENTS = Counter("fanline_intents", "Predicted intents", ["intent"], registry=REGISTRY)
ESCALATIONS = Counter("fanline_escalations", "Hand-offs to humans", ["reason"], registry=REGISTRY)
SENDS = Counter("fanline_sends", "Outbound send attempts", ["result"], registry=REGISTRY)
SEND_FAILURES = Counter(
    "fanline_send_failures", "Failed sends by provider error code", ["code"], registry=REGISTRY
)

# sends whose outcome is not known: in_doubt (still being looked up), unknown (an operator's)
UNCERTAIN_SENDS = Gauge(
    "fanline_outbox_uncertain", "Sends whose outcome is not known", ["state"], registry=REGISTRY
)


def count_turn(outcome: Any) -> None:
    _child(TURNS, "held" if outcome.held else "answered").inc()
    if outcome.prediction is not None:
        _child(INTENTS, outcome.prediction.intent or "none").inc()
    escalation = outcome.escalation
    if escalation is not None:
        _child(ESCALATIONS, escalation["reason"]).inc()


# a metric's child per label value, looked up once (`labels()` validates and locks every call);
# the values are the content's intents and reasons: a few hundred at most
_children: dict[tuple[int, str], Any] = {}


def _child(metric: Counter, value: str) -> Any:
    child = _children.get((id(metric), value))
    if child is None:
        child = _children[(id(metric), value)] = metric.labels(value)
    return child


def exposition() -> bytes:
    return generate_latest(REGISTRY)
