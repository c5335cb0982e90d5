"""Close calls between intents: when to ask "Did you mean 1) ... or 2) ...?", and reading the answer.

Step 7 of the message path. The engine asks `close_call` before it answers an intent; when the
best two answerable intents are close, or the best one is barely above the threshold, it starts
`pattern_disambiguate` instead of guessing. On the fan's next text `chosen` says which option it
picks ("1", "the second one", words of an option's label), or None: then the text is a new turn.
Pure: values in, values out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError, Location
from bot.messages import Prediction

OPTIONS_SLOT = "disambiguation_options"  # the intents offered, full names, in order
LABEL_SLOTS = ("disambiguation_option_1", "disambiguation_option_2")  # for the question's text
CHOICE_SLOT = "disambiguation_choice"  # the pattern's collect step

_ORDINALS = (
    {"1", "one", "first", "1st", "the first", "first one", "the first one", "a", "option 1"},
    {"2", "two", "second", "2nd", "the second", "second one", "the second one", "b", "option 2",
     "the last one", "last one", "last"},
)  # fmt: skip
_FILLER = re.compile(r"^(?:i meant?|i mean|meant|mean|um+|uh+|oh|ok|okay|yes|yeah|yea|yep)\s+")
_NOT_CONTENT = {"the", "a", "an", "my", "your", "of", "and", "or", "to", "for", "in", "on", "at",
                "is", "are", "what", "when", "where", "how", "about", "one", "pls", "please"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Disambiguation:
    """`fanline.disambiguation` in config.yml. `margin`: ask when the best two confidences are
    closer than this in log-odds (0.5: 0.62 vs 0.5, or 0.88 vs 0.82); `grey_zone`: ask when
    the best is less than this above the threshold (and the second is at least the threshold
    less the grey zone). `enabled: false` never asks."""

    margin: float = 0.5
    grey_zone: float = 0.1
    enabled: bool = True


def disambiguation_settings(value: Any, path: str) -> Disambiguation:
    """`fanline.disambiguation` of config.yml, validated (errors name file, line and key)."""
    if value is None:
        return Disambiguation()
    lines = getattr(value, "key_lines", {})
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", Location(path, None, "fanline.disambiguation"))
    out: dict[str, Any] = {}
    for key, raw in value.items():
        where = Location(path, lines.get(key), f"fanline.disambiguation.{key}")
        if key == "enabled":
            if not isinstance(raw, bool):
                raise ConfigError("must be true or false", where)
        elif key in ("margin", "grey_zone"):
            top = 10 if key == "margin" else 1  # log-odds; a confidence
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= top:
                raise ConfigError(f"must be a number in [0, {top}], got {raw!r}", where)
            raw = float(raw)
        else:
            raise ConfigError(f"unknown key {key!r} (use margin, grey_zone, enabled)", where)
        out[key] = raw
    return Disambiguation(**out)


def close_call(
    prediction: Prediction | None,
    threshold: float,
    settings: Disambiguation,
    target: Callable[[str], str | None],
) -> list[str] | None:
    """The two intents (full names) to offer, or None to answer as usual.

    `target(intent)` names what an intent would start (a flow id or a response), None when it
    is not something to offer; two intents with the same target are one option.
    """
    if not settings.enabled or prediction is None or not prediction.ranking:
        return None
    best, p1 = prediction.ranking[0]
    if prediction.intent is None or base(best) != prediction.intent or target(best) is None:
        return None  # out of scope, or decided by something other than the ranking
    # the runner-up (another target than the best's): when it cannot be offered, no question
    second = next(((n, p) for n, p in prediction.ranking[1:] if target(n) != target(best)), None)
    if second is None or target(second[0]) is None:
        return None
    name2, p2 = second
    close = _logit(p1) - _logit(p2) < settings.margin
    grey = p1 < threshold + settings.grey_zone and p2 >= threshold - settings.grey_zone
    return [best, name2] if close or grey else None


def chosen(
    text: str, options: Sequence[str], labels: Sequence[str], prediction: Prediction | None
) -> int | None:
    """Index of the option the fan picked, or None when the text is not an answer."""
    words = _normalise(text)
    for index, forms in enumerate(_ORDINALS[: len(options)]):
        if words in forms:
            return index
    if prediction is not None and prediction.ranking and prediction.intent:
        best = prediction.ranking[0][0]
        if best in options and base(best) == prediction.intent:
            return list(options).index(best)
    said = set(words.split()) - _NOT_CONTENT
    hits = [
        i
        for i, label in enumerate(labels)
        if said & (set(_normalise(label).split()) - _NOT_CONTENT)
    ]
    return hits[0] if len(hits) == 1 and len(said) <= 4 else None


def _logit(p: float) -> float:
    """Log-odds: near 1 calibrated confidences crowd together (0.996 vs 0.905 is a clear win)."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def humanise(intent: str) -> str:
    """A label from an intent's name when its flow gives none: faq/ask_tour_dates -> tour dates."""
    name = intent.split("/", 1)[-1]
    name = re.sub(r"^(ask|faq|check|get|request)_", "", name)
    return name.replace("_", " ")


def base(intent: str) -> str:
    return intent.split("/", 1)[0]


def _normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.lower())
    text = " ".join(text.split())
    return _FILLER.sub("", text).strip()
