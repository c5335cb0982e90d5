"""Turns a fan's free text into a typed slot value (the engine's `collect` step calls this).

`parse_slot_value(slot, text)` returns the normalised value, or None when the text is not a
valid answer for the slot's type (the engine then re-asks). Values are JSON-safe: dates are ISO
strings, numbers floats, postal codes upper-case with their usual spacing. A yes/no answer also
reads the NLU's `affirm`/`deny` (`prediction=`), so "Yes I want in" counts. A `location` is a
postal code or a city (`bot.flows.places`); a `code` looks like one (digits, or one word in
capitals), so a sentence is never taken for a presale code. Pure; the only module that imports
python-dateutil.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date, datetime
from typing import Any

from dateutil import parser as date_parser

from bot.flows import places
from bot.flows.model import Slot
from bot.messages import Prediction

_YES = {"yes", "y", "yeah", "yea", "yep", "yup", "ya", "yas", "sure", "ok", "okay", "k", "true",
        "yes please", "of course", "absolutely", "definitely", "for sure", "why not", "sounds good",
        "i do", "count me in", "sign me up", "👍", "✅", "👌", "🙌", "💯", "si", "sí", "oui"}  # fmt: skip
_NO = {"no", "n", "nope", "nah", "no thanks", "no thank you", "false", "not really", "not now",
       "not interested", "👎", "❌", "🙅", "non"}  # fmt: skip
# Words that turn a leading "yes" into something else ("yes but not now", "ok wait what").
_HEDGES = {"no", "not", "dont", "don", "never", "but", "wait", "later", "nah", "nope", "maybe",
           "idk", "stop", "unsubscribe", "what", "who", "why", "how", "if"}  # fmt: skip
# The NLU's affirm/deny counts at a yes/no question only this sure, and only for texts with
# letters ("?" alone is a question, whatever the classifier thinks).
AFFIRM_CONFIDENCE = 0.7

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)

# (pattern on the upper-cased, space-collapsed text, normaliser of the match)
_POSTAL_CODES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^(\d{5})(?:[- ]?(\d{4}))?$"), lambda m: "-".join(g for g in m.groups() if g)),
    (re.compile(r"^([A-Z]\d[A-Z]) ?(\d[A-Z]\d)$"), lambda m: f"{m[1]} {m[2]}"),  # Canada
    (
        re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$"),  # United Kingdom
        lambda m: f"{m[1]} {m[2]}",
    ),
]

_MIN_YEAR, _MAX_YEAR = 1900, 2100


def parse_slot_value(
    slot: Slot, text: str, *, today: date | None = None, prediction: Prediction | None = None
) -> Any | None:
    """The value `text` gives `slot`, or None when it is not a valid answer."""
    if slot.type == "categorical":
        return parse_categorical(text, slot.values or [])
    if slot.type == "date":
        return parse_date(text, today=today)
    if slot.type == "bool":
        return parse_bool(text, prediction)
    return _PARSERS[slot.type](text)


@functools.lru_cache(maxsize=2048)  # pure, and read several times a turn (keywords, entities)
def normalise(text: str) -> str:
    """Case-folded, NFKC, punctuation dropped, whitespace collapsed (emoji are kept)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(kept.split())


def parse_bool(text: str, prediction: Prediction | None = None) -> bool | None:
    """yes / no, read the way fans write it: "YES 🙌", "yesss", "yes yes yes", "Yes I want in"."""
    tokens = _answer_tokens(text)
    words = " ".join(tokens)
    if words in _YES_SQUEEZED:
        return True
    if words in _NO_SQUEEZED:
        return False
    if tokens and not _HEDGES & set(tokens[1:]):
        if tokens[0] in _YES_SQUEEZED and not _NO_SQUEEZED & set(tokens[1:]):
            return True  # "yes i want in", "sure thing"
        if tokens[0] in _NO_SQUEEZED and not _YES_SQUEEZED & set(tokens[1:]):
            return False  # "nah im good"
    sure = prediction is not None and prediction.confidence >= AFFIRM_CONFIDENCE
    if sure and prediction.intent in ("affirm", "deny") and any(c.isalpha() for c in text):  # type: ignore[union-attr]
        return prediction.intent == "affirm"  # type: ignore[union-attr]
    return None


def _squeeze(word: str) -> str:
    """Elongations undone: "yesss" -> "yes", "nooo" -> "no", "okk" -> "ok" (runs of a letter)."""
    return re.sub(r"(.)\1+", r"\1", word)


def _answer_tokens(text: str) -> list[str]:
    """Words (squeezed) and yes/no emoji; other emoji dropped, repeats ("yes yes yes") merged."""
    tokens: list[str] = []
    for token in re.findall(r"[\w']+|[^\w\s]", normalise(text)):
        token = _squeeze(token) if token[0].isalnum() else token
        if not token[0].isalnum() and token not in _YES_NO_SYMBOLS:
            continue  # "YES 🙌!!": the decoration is not the answer
        if not tokens or tokens[-1] != token:
            tokens.append(token)
    return tokens


_YES_SQUEEZED = {" ".join(_squeeze(w) for w in p.split()) for p in _YES}
_NO_SQUEEZED = {" ".join(_squeeze(w) for w in p.split()) for p in _NO}
_YES_NO_SYMBOLS = {p for p in _YES | _NO if not p[0].isalnum()}


def parse_float(text: str) -> float | None:
    cleaned = text.strip().removeprefix("$").replace(" ", "")
    if cleaned and cleaned not in "+-." and _NUMBER.match(cleaned):
        return float(cleaned.replace(",", ""))
    return _number_words(normalise(text).replace("-", " "))


def _number_words(words: str) -> float | None:
    # "seven", "twenty", "twenty five": enough for ages and counts typed as words.
    parts = words.split()
    if len(parts) == 1 and parts[0] in _UNITS:
        return float(_UNITS.index(parts[0]))
    if parts and parts[0] in _TENS and len(parts) <= 2:
        ones = _UNITS.index(parts[1]) if len(parts) == 2 and parts[1] in _UNITS[1:10] else None
        if len(parts) == 2 and ones is None:
            return None
        return float(_TENS[parts[0]] + (ones or 0))
    return None


def parse_date(text: str, *, today: date | None = None) -> str | None:
    """ISO date of 'March 3', '3/14/2001', '14 March 2001', '2001-03-14' (month first if unsure)."""
    cleaned = text.strip()
    # A date needs a month: a name or a separator. "3" or "42" alone is not a date.
    if not re.search(r"[A-Za-z]{3}|\d[/.-]\d", cleaned) or len(cleaned) > 40:
        return None
    base = today or date.today()
    try:
        parsed = date_parser.parse(cleaned, default=datetime(base.year, 1, 1), fuzzy=False)
    except (ValueError, OverflowError):
        return None
    if not _MIN_YEAR <= parsed.year <= _MAX_YEAR or parsed.time() != datetime.min.time():
        return None
    return parsed.date().isoformat()


def parse_email(text: str) -> str | None:
    cleaned = text.strip().removeprefix("mailto:").strip("<>").strip()
    if not _EMAIL.match(cleaned) or ".." in cleaned:
        return None
    local, _, domain = cleaned.rpartition("@")
    return f"{local}@{domain.lower()}"


def parse_postal_code(text: str) -> str | None:
    cleaned = " ".join(text.upper().split())
    for pattern, normalised in _POSTAL_CODES:
        match = pattern.match(cleaned)
        if match:
            return normalised(match)
    return None


# "my zip is 90210", "its M5V 2T6", "zip: 10001": the words around a code in an answer
_CODE_LEAD = re.compile(
    r"^(?:(?:my|the|our)\s+)?(?:(?:zip|postal|post|presale|promo|access)(?:\s*code)?|code)"
    r"(?:\s+is)?\s*[:=-]?\s*|^(?:it'?s|its|it is|here'?s|heres)\s+",
    re.IGNORECASE,
)


def parse_location(text: str) -> str | None:
    """A postal code (as `postal_code`) or a city name: "90210", "toronto?", "im in Austin TX"."""
    bare = _CODE_LEAD.sub("", text.strip(), count=1).rstrip(" .!?")
    return parse_postal_code(text) or parse_postal_code(bare) or places.city(text)


_CODE = re.compile(r"^[A-Za-z0-9]+(?:[ -]+[A-Za-z0-9]+){0,3}$")


def parse_code(text: str) -> str | None:
    """A code as typed ("NL123455", "nl-123 455", "NOVA"): 3-24 letters and digits, each word
    with a digit, in capitals or at most 3 long. "why was it changed tho" is not a code."""
    cleaned = _CODE_LEAD.sub("", text.strip().strip("\"'“”‘’`"), count=1).strip("\"'“”‘’` .!")
    if not _CODE.match(cleaned):
        return None
    words = cleaned.replace("-", " ").split()
    if not 3 <= len("".join(words)) <= 24:
        return None
    if len(words) == 1 and words[0].isupper():
        return cleaned  # one word in capitals: "NOVA"
    if not any(c.isdigit() for c in cleaned):
        return None
    if not all(any(c.isdigit() for c in w) or w.isupper() or len(w) <= 3 for w in words):
        return None  # "2 tickets": a sentence with a number in it
    return cleaned


def parse_categorical(text: str, values: list[str]) -> str | None:
    """One of `values` by name (case-insensitive) or by its 1-based number in the list."""
    wanted = normalise(text)
    for value in values:
        if normalise(value) == wanted:
            return value
    if wanted.isdigit() and 1 <= int(wanted) <= len(values):
        return values[int(wanted) - 1]
    return None


_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?$")
_NOT_A_NAME = {"yes", "no", "ok", "okay", "hi", "hey", "hello", "thanks", "stop", "help", "what",
               "why", "when", "where", "who", "how", "lol", "idk", "nope", "yeah", "sure"}  # fmt: skip
# Words that are never part of a name: they show a sentence ("im so excited", "it's my
# birthday today") once the lead-in ("im", "it's") is dropped.
_NOT_NAME_WORDS = _NOT_A_NAME | {
    "my", "your", "the", "a", "an", "so", "not", "just", "here", "back", "good", "fine", "great",
    "sorry", "excited", "confused", "ready", "done", "new", "in", "on", "at", "to", "from", "going",
    "gonna", "still", "also", "really", "very", "happy", "sad", "tired", "bored", "birthday",
    "bday", "today", "tonight", "tomorrow", "is", "me", "you", "u", "ur", "it", "this", "that",
    "and", "or", "of", "for", "with", "dying", "screaming", "crying", "obsessed", "coming", "there",
    "well", "busy", "lost", "fan", "huge", "big", "name", "first", "its", "im", "i", "i'm",
    "it's", "hiya",
}  # fmt: skip

# What fans put around a name: "its jess", "I'm Maya!", "my name is Jo lol", "hi this is Sam 😊".
_NAME_LEAD = re.compile(
    r"^(?:(?:hi|hey|hello|yo|oh|ok|okay)\b[\s,!.]*)?"
    r"(?:(?:it'?s|its|it is|i'?m|im|i am|my name is|my names?|my name'?s|name'?s|names|"
    r"this is|call me|(?:you|u) can call me|they call me)\s+)?",
    re.IGNORECASE,
)
_NAME_TAIL = re.compile(r"(?:[\s,]+(?:lol|lmao|haha+|hehe|btw|thx|thanks))*[\W_]*$", re.IGNORECASE)


def parse_person_name(text: str) -> str | None:
    """A first name (or two): letters in any script, `-`, `'` and `.`; no digits, no questions.

    Refusing "when is the tour?" as a name is what lets a fan's question interrupt the
    "what's your name?" step instead of being saved as their name. "its jess" is Jess: the
    words fans wrap a name in are dropped first.
    """
    if "?" in text:
        return None
    core = _NAME_TAIL.sub("", text.strip().replace("’", "'"))
    words = _NAME_LEAD.sub("", core, count=1).split() or core.split()
    if not 1 <= len(words) <= 3 or len(" ".join(words)) > 40:
        return None
    if not all(_NAME_WORD.match(w) for w in words) or words[0].lower() in _NOT_A_NAME:
        return None
    if any(w.lower().strip(".'") in _NOT_NAME_WORDS for w in words):
        return None
    return " ".join(w[:1].upper() + w[1:] if w.islower() else w for w in words)


def parse_text(text: str) -> str | None:
    cleaned = text.strip()
    return cleaned or None


def parse_any(text: str) -> str:
    return text.strip()


_PARSERS: dict[str, Any] = {
    "text": parse_text,
    "bool": parse_bool,
    "float": parse_float,
    "email": parse_email,
    "postal_code": parse_postal_code,
    "location": parse_location,
    "code": parse_code,
    "person_name": parse_person_name,
    "any": parse_any,
}
