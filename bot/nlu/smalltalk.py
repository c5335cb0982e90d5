"""Small talk every line understands: the engine's own training examples (`smalltalk.yml`).

Content time (`fanline train`, via `bot.nlu.train`): compliments, excitement, insults and
personal questions to the star are added to a line's training data, as examples of the line's
own intent for them when it has one (same name, or one named in the intent's
`metadata.covered_by`), else as the shipped intent, answered by `pattern_smalltalk_*`
(bot/flows/default_flows.yml): an imported Rasa project gets them too; a line replaces any of
them with its own intent, flow or response.
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


def owners(data: TrainingData) -> dict[str, str]:
    """Which intent learns each shipped small-talk intent's examples: the line's own intent of
    the same name or named in `metadata.covered_by` (its flow answers them), else the shipped
    intent itself (a default flow answers it)."""
    own = {e.intent for e in data.examples}
    out = {}
    for intent in dict.fromkeys(e.intent for e in _defaults().examples):
        first = next(e for e in _defaults().examples if e.intent == intent)
        names = [intent, *(first.metadata or {}).get("covered_by", [])]
        out[intent] = next((n for n in names if n in own), intent)
    return out


def missing_intents(data: TrainingData) -> list[str]:
    """The shipped small-talk intents a line has no intent of its own for."""
    return [intent for intent, owner in owners(data).items() if owner == intent]


def with_smalltalk(data: TrainingData) -> TrainingData:
    """The line's data with the shipped small talk: as the line's own intent's examples where
    it has one ("are you seeing anyone" joins its personal_question), else as the shipped
    intent. Texts the line already has are skipped."""
    owner = owners(data)
    seen = {e.text.strip().lower() for e in data.examples}
    extra = tuple(
        replace(e, intent=owner[e.intent])
        for e in _defaults().examples
        if e.text.strip().lower() not in seen
    )
    return replace(data, examples=data.examples + extra) if extra else data
