"""Whether a text that arrives while a question waits is its answer (step 7 of the message path).

The engine's `collect` steps ask these before they take a text as a slot's value: is the text a
question of the fan's own ("why was it changed tho"), a way of leaving ("actually never mind"),
or a reading of the NLU sure enough to be another request? And it keeps the entities of the
last few texts, so "PLEASE come to Denver" -> "1" -> the city still fills the location. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.flows import disambiguation as dis
from bot.flows import places
from bot.flows.slot_types import normalise
from bot.messages import Prediction

# Words a question starts with (and short forms fans type); an auxiliary verb counts only when
# a second word follows ("is my ticket still valid", not a fan called "Will").
_WH = {"what", "whats", "what's", "wat", "wut", "when", "whens", "when's", "wen", "where",
       "wheres", "where's", "why", "how", "hows", "how's", "who", "whos", "who's", "which",
       "whose", "qué", "que", "cuándo", "cuando", "dónde", "donde", "cómo", "como", "porque",
       "quand", "où", "pourquoi", "comment"}  # fmt: skip
_AUX = {"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will", "would",
        "should", "shall", "may", "might", "has", "have", "had", "isnt", "isn't", "arent",
        "aren't", "doesnt", "doesn't", "dont", "don't", "didnt", "didn't", "cant", "can't",
        "wont", "won't", "r"}  # fmt: skip
_OPENERS = {"wait", "so", "but", "and", "ok", "okay", "oh", "hey", "hi", "um", "uh", "also",
            "btw", "lol", "yo", "hmm", "sorry", "actually", "then"}  # fmt: skip
# Subjects after an auxiliary: "is my ticket", "can i", "will she", "do u".
_SUBJECTS = {"i", "you", "u", "ya", "she", "he", "it", "they", "we", "my", "your", "ur", "the",
             "this", "that", "there", "nova", "her", "his", "their", "our", "a", "an", "any",
             "anyone", "someone", "tickets", "ticket"}  # fmt: skip
# Words around "never mind": "actually never mind", "oh forget it lol", "nvm then".
_FILLERS = {"actually", "oh", "ok", "okay", "k", "um", "umm", "uh", "hmm", "wait", "nah", "no",
            "just", "lol", "haha", "jk", "sorry", "pls", "please", "then", "so", "oops", "ah",
            "eh", "yeah", "fine", "that", "this", "all", "it", "about", "ugh", "srry", "sry",
            "and", "but", "well", "honestly", "tbh", "ahh", "lmao"}  # fmt: skip
# the NLU's "none of the line's intents" (bot.nlu.data.OUT_OF_SCOPE; Rasa's fallback)
NOT_A_REQUEST = {"out_of_scope", "nlu_fallback"}
RECENT_TURNS = 3  # entities of this many texts (this one included) are remembered
_MAX_REMEMBERED = 8
# Entity names that are a place, for slots of type `location` (Rasa projects use several).
POSTAL_ENTITIES = {"zip", "zipcode", "zip_code", "postal_code", "postcode"}
LOCATION_ENTITIES = {"location", "city", "place", "town", "GPE", "LOC"} | POSTAL_ENTITIES


def is_question(text: str) -> bool:
    """A question of the fan's own: it ends with "?" or opens like one ("why was it changed
    tho", "is my ticket still valid or"). A bare "?" asks for the question again instead."""
    stripped = text.strip()
    words = re.findall(r"[\w'’]+", stripped.casefold().replace("’", "'"))
    if not words:
        return False
    asks = stripped.rstrip(" \t!.😅😂🤔🙏").endswith("?") or stripped.startswith("¿")
    if asks and len(words) >= 2:  # "maybe?" or "really?" alone is a hesitation, not a question
        return True
    while len(words) > 1 and words[0] in _OPENERS:  # "wait when is ...", "ok so why ..."
        words = words[1:]
    first = words[0]
    if first in _WH:
        return True
    return first in _AUX and len(words) >= 3 and words[1] in _SUBJECTS


def cancels(text: str, keywords: Iterable[str]) -> str | None:
    """The cancel keyword the text is once the words around it are dropped ("actually never
    mind", "forget it lol", "don't worry about it"), or None. `keywords`: the cancel pattern's
    own. The keyword, not the text, labels the flow's start (no message bodies in the log)."""
    wanted = {_fold(k) for k in keywords}
    words = _fold(text).split()
    while words and words[0] in _FILLERS:
        words = words[1:]
    while words and words[-1] in _FILLERS and " ".join(words) not in wanted:
        words = words[:-1]
    said = " ".join(words)
    return said.upper() if said in wanted else None


def _fold(text: str) -> str:
    """As keywords are matched (`normalise`), with "don't" and "dont" the same word."""
    return normalise(text.replace("'", "").replace("’", ""))


def sure(prediction: Prediction | None, threshold: float, margin: dis.Disambiguation) -> bool:
    """The NLU is sure the text is one of the line's requests: above the threshold by the grey
    zone, and no close second. "None of them" (out of scope) is never a sure request: while a
    question waits, "idk" is re-asked, not handed over."""
    if prediction is None or not prediction.intent or prediction.intent in NOT_A_REQUEST:
        return False
    if prediction.confidence < threshold + margin.grey_zone:
        return False
    return not dis.close_call(prediction, threshold, margin, lambda intent: intent)


# ---------------------------------------------------------------- remembered entities


def remember(
    recent: Sequence[Mapping[str, Any]], prediction: Prediction | None, text: str
) -> tuple[dict[str, Any], ...]:
    """The entities of the last RECENT_TURNS texts, newest first, after this text (age 0).

    Besides the NLU's entities, a city named after a locative word ("come to Denver") is kept
    as a `location`, so lines without a city entity remember it too.
    """
    new: list[dict[str, Any]] = []
    for entity in prediction.entities if prediction else ():
        if entity.value is not None and isinstance(entity.value, str | int | float):
            new.append({"entity": entity.entity, "value": entity.value, "age": 0})
    if not any(e["entity"] in LOCATION_ENTITIES for e in new) and (place := places.mentioned(text)):
        new.append({"entity": "location", "value": place, "age": 0})
    older = [
        {**e, "age": int(e.get("age", 0)) + 1}
        for e in recent
        if int(e.get("age", 0)) + 1 < RECENT_TURNS
    ]
    return tuple((new + older)[:_MAX_REMEMBERED])


def recalled(recent: Sequence[Mapping[str, Any]], names: set[str]) -> list[Any]:
    """Values of remembered entities with one of `names`, newest first."""
    return [e["value"] for e in recent if e.get("entity") in names and e.get("value") is not None]
