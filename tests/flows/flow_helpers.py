"""Shared helpers of the flow tests (imported by name: this folder is on sys.path)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from bot.flows import DialogueState, FlowEngine, Progress, TurnInput
from bot.messages import Entity, Prediction

DOMAIN = """
slots:
  birthday: {type: date}
  zip: {type: postal_code}
  email: {type: email}
  size: {type: categorical, values: [Small, Medium, Large]}
  agree: {type: bool}
  age: {type: float}
  name: {type: text}
  shoutout_requested: {type: bool}
  tier: {type: text, initial_value: basic}
responses:
  utter_ask_birthday:
    - text: "When is your birthday?"
  utter_ask_zip:
    - text: "What's your ZIP code?"
  utter_ask_email:
    - text: "Your email?"
  utter_ask_size:
    - text: "Which size? 1) Small 2) Medium 3) Large"
  utter_ask_agree:
    - text: "OK to text you? (yes/no)"
  utter_ask_age:
    - text: "How old are you?"
  utter_ask_name:
    - text: "What's your name?"
  utter_invalid_zip:
    - text: "That doesn't look like a ZIP code."
  utter_too_young:
    - text: "Sorry, you must be 13 or older."
  utter_thanks:
    - text: "Thanks {first_name}! Birthday {birthday}, ZIP {zip}."
  utter_tour:
    - text: "Tour dates: example.com/tour"
  utter_faq/ask_merch:
    - text: "Merch is at example.com/shop"
  utter_welcome:
    - text: "Welcome {first_name}!"
  utter_broadcast_thanks:
    - text: "Thanks for replying!"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def predict(intent: str | None, confidence: float = 0.9, **entities: object) -> Prediction:
    return Prediction(
        text="",
        intent=intent,
        confidence=confidence,
        entities=tuple(Entity(k, v) for k, v in entities.items()),
    )


class Conversation:
    """Feeds texts to an engine turn after turn, keeping the state like the pipeline would."""

    def __init__(self, engine: FlowEngine, fan: dict[str, object] | None = None) -> None:
        self.engine = engine
        self.state = DialogueState()
        self.fan = fan or {"first_name": "Ana"}
        self.last: Progress | None = None

    def send(self, text: str, prediction: Prediction | None = None, **kwargs: object) -> Progress:
        inp = TurnInput(text, prediction, fan=self.fan, **kwargs)  # type: ignore[arg-type]
        self.last = self.engine.turn(self.state, inp)
        # Round-trip through JSON, as the store does, so stored state is exercised every turn.
        self.state = DialogueState.from_json(self.last.state.to_json())
        return self.last

    def resume(self, slot_events: dict[str, object]) -> Progress:
        self.last = self.engine.resume(self.state, slot_events, TurnInput("", fan=self.fan))
        self.state = DialogueState.from_json(self.last.state.to_json())
        return self.last
