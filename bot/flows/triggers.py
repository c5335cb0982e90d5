"""Which flows a fan's text or an event could start: keywords, NLU intents, events.

Built once from the loaded flows; the engine asks it for candidates on every turn (step 7 of
the message path) and then checks each candidate's `if:` guard. Order is the flows' load order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from bot.flows.model import Flow
from bot.flows.slot_types import normalise
from bot.messages import Entity, Prediction

CANCEL_FLOW = "pattern_cancel_flow"
HANDOFF_FLOW = "pattern_human_handoff"
CANNOT_HANDLE_FLOW = "pattern_cannot_handle"
COMPLETED_FLOW = "pattern_completed"
INTERNAL_ERROR_FLOW = "pattern_internal_error"
CONTINUE_FLOW = "pattern_continue_interrupted"
# "Reply VIP", "text TOUR to ...", "reply with 'MERCH'": the keyword a broadcast asks fans to send
_ASKED_KEYWORD = re.compile(
    r"\b(?i:reply|respond|text|txt|send)\s+(?i:with\s+|back\s+)?[\"'“‘]?([A-Z][A-Z0-9]+)\b"
)
REACTION_FLOW = "pattern_reaction"
DISAMBIGUATE_FLOW = "pattern_disambiguate"
# A button's payload as Rasa writes it: `/intent`, `/intent{"slot": "v"}`, `/intent@0.9{...}`
_PAYLOAD = re.compile(r"^/([A-Za-z_][\w\-/]*)(?:@([01](?:\.\d+)?))?(\{.*\})?$", re.DOTALL)
# Intents that always mean a pattern, even when a project's override forgot the nlu_trigger.
PATTERN_INTENTS = {"cancel": CANCEL_FLOW, "human_handoff": HANDOFF_FLOW}


class Triggers:
    def __init__(self, flows: Mapping[str, Flow], default_threshold: float) -> None:
        self._keywords: dict[str, list[str]] = {}
        self._intents: dict[str, list[tuple[str, float]]] = {}
        self._events: dict[str, list[str]] = {}
        for flow_id, flow in flows.items():
            for keyword in flow.keywords:
                self._keywords.setdefault(normalise(keyword), []).append(flow_id)
            for trigger in flow.nlu_trigger:
                threshold = trigger.intent.confidence_threshold
                self._intents.setdefault(trigger.intent.name, []).append(
                    (flow_id, default_threshold if threshold is None else threshold)
                )
            for event in flow.events:
                self._events.setdefault(event, []).append(flow_id)
        for found in self._intents.values():  # a line's own flow before a pattern's
            found.sort(key=lambda item: flows[item[0]].is_pattern)
        for intent, flow_id in PATTERN_INTENTS.items():
            listed = [f for f, _ in self._intents.get(intent, [])]
            if flow_id in flows and flow_id not in listed:
                self._intents.setdefault(intent, []).append((flow_id, default_threshold))

    def by_keyword(self, text: str) -> list[tuple[str, str]]:
        """(flow id, label) of flows whose keyword is the whole text, normalised."""
        words = normalise(text)
        return [(f, f"keyword:{words.upper()}") for f in self._keywords.get(words, [])]

    def by_intent(self, prediction: Prediction | None) -> list[tuple[str, str]]:
        if prediction is None or not prediction.intent:
            return []
        return [
            (flow_id, f"intent:{prediction.intent}")
            for flow_id, threshold in self._intents.get(prediction.intent, [])
            if prediction.confidence >= threshold
        ]

    def asked_in(self, broadcast: str | None) -> list[tuple[str, str]]:
        """(flow id, label) of flows whose keyword a broadcast asks fans to reply with."""
        found: list[tuple[str, str]] = []
        for keyword in _ASKED_KEYWORD.findall(broadcast or ""):
            found += [
                (f, f"broadcast:{keyword}") for f in self._keywords.get(normalise(keyword), [])
            ]
        return found

    def by_event(self, event: str | None) -> list[tuple[str, str]]:
        return [(f, f"event:{event}") for f in self._events.get(event or "", [])]

    def keywords_of(self, flow_id: str) -> set[str]:
        """The keywords (normalised) that start `flow_id`."""
        return {k for k, flows in self._keywords.items() if flow_id in flows}

    def keywords(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._keywords.items()}


def payload_prediction(text: str) -> Prediction | None:
    """What Rasa reads from a button payload (its RegexMessageHandler): that intent at 1.0 (or
    the `@` confidence), the JSON's keys as entities; None for any other text or bad JSON."""
    match = _PAYLOAD.match(text.strip())
    if match is None:
        return None
    intent, confidence, body = match.groups()
    entities: list[Entity] = []
    if body:
        try:
            values = json.loads(body)
        except ValueError:
            return None
        if not isinstance(values, dict):
            return None
        for name, value in values.items():
            for one in value if isinstance(value, list) else [value]:
                entities.append(Entity(str(name), one, extractor="payload"))
    score = float(confidence) if confidence else 1.0
    return Prediction(text, intent, score, ((intent, score),), tuple(entities))
