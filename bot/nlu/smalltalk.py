"""Small talk every line understands: the engine's own training examples (`smalltalk.yml`).

Content time (`fanline train`, via `bot.nlu.train`): compliments, excitement, insults and
personal questions to the star are added to a line's training data unless the line already has
an intent for them (same name, or one named in the intent's `metadata.covered_by`). The flows
that answer them are `pattern_smalltalk_*` (bot/flows/default_flows.yml), so an imported Rasa
project gets them too; a line replaces any of them with its own intent, flow or response.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from bot.nlu.data import TrainingData, load_training_data

FILE = Path(__file__).with_name("smalltalk.yml")


@lru_cache(maxsize=1)
def _defaults() -> TrainingData:
    return load_training_data([FILE])


def fingerprint() -> str:
    """Changes when the shipped small talk does (the model must then be retrained)."""
    return hashlib.sha256(FILE.read_bytes()).hexdigest()[:16]


def missing_intents(data: TrainingData) -> list[str]:
    """The shipped small-talk intents a line has no intent of its own for."""
    own = {e.intent for e in data.examples}
    out = []
    for intent in dict.fromkeys(e.intent for e in _defaults().examples):
        first = next(e for e in _defaults().examples if e.intent == intent)
        covered_by = set((first.metadata or {}).get("covered_by", []))
        if intent not in own and not own & covered_by:
            out.append(intent)
    return out


def with_smalltalk(data: TrainingData) -> TrainingData:
    """The line's data with the shipped small talk it lacks (examples it has itself skipped)."""
    missing = set(missing_intents(data))
    seen = {e.text.strip().lower() for e in data.examples}
    extra = tuple(
        e
        for e in _defaults().examples
        if e.intent in missing and e.text.strip().lower() not in seen
    )
    return replace(data, examples=data.examples + extra) if extra else data
