"""Turns a fan's free text into a typed slot value (the engine's `collect` step calls this).

`parse_slot_value(slot, text)` returns the normalised value, or None when the text is not a
valid answer for the slot's type (the engine then re-asks). Values are JSON-safe: dates are ISO
strings, numbers floats, postal codes upper-case with their usual spacing. Pure; the only module
that imports python-dateutil.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any

from dateutil import parser as date_parser

from bot.flows.model import Slot

_YES = {"yes", "y", "yeah", "yea", "yep", "yup", "ya", "sure", "ok", "okay", "k", "true",
        "yes please", "of course", "absolutely", "definitely", "👍", "✅", "si", "sí", "oui"}  # fmt: skip
_NO = {"no", "n", "nope", "nah", "no thanks", "no thank you", "false", "not really", "👎", "❌",
       "non"}  # fmt: skip

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


def parse_slot_value(slot: Slot, text: str, *, today: date | None = None) -> Any | None:
    """The value `text` gives `slot`, or None when it is not a valid answer."""
    if slot.type == "categorical":
        return parse_categorical(text, slot.values or [])
    if slot.type == "date":
        return parse_date(text, today=today)
    return _PARSERS[slot.type](text)


def normalise(text: str) -> str:
    """Case-folded, NFKC, punctuation dropped, whitespace collapsed (emoji are kept)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(kept.split())


def parse_bool(text: str) -> bool | None:
    words = normalise(text)
    if words in _YES:
        return True
    if words in _NO:
        return False
    return None


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


def parse_person_name(text: str) -> str | None:
    """A first name (or two): letters in any script, `-`, `'` and `.`; no digits, no questions.

    Refusing "when is the tour?" as a name is what lets a fan's question interrupt the
    "what's your name?" step instead of being saved as their name.
    """
    words = text.strip().split()
    if not 1 <= len(words) <= 3 or len(" ".join(words)) > 40:
        return None
    if not all(_NAME_WORD.match(w) for w in words) or words[0].lower() in _NOT_A_NAME:
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
    "person_name": parse_person_name,
    "any": parse_any,
}
