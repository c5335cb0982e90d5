"""Fans' texts made fit to keep as training examples: phone numbers, emails, handles, personal
links and names replaced by placeholders, the question's meaning left as it was.

Pure. Used before a text is stored as a label (`turn_labels.text`) or written into the fan
line's content files (`bot.teach.content_writer`): those outlive the fan's erasure and are read
by the content team, so they must hold nothing that points back to a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

PHONE, EMAIL, HANDLE, LINK, NAME = "<phone>", "<email>", "<handle>", "<link>", "<name>"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_URL = re.compile(
    r"(?:https?://|www\.)[^\s]+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|me|ly|gg|tv|app|biz|info)"
    r"/[^\s]*",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_.]{2,}")
# a run of digits with the separators numbers are written with: +1 (555) 123-4567, 555.123.4567,
# +44 20 7946 0958, 5551234567; at least 7 digits (shorter runs are times, prices, years)
_PHONE = re.compile(r"(?<![\w/])\+?\(?\d[\d\s().-]{5,}\d(?![\w/])")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# "my name is X", "this is X": whatever word follows is a name
_NAME_INTRO = re.compile(
    r"\b(my name is|my name's|my names|name's|this is|it's|its)\s+([A-Za-z][\w'-]*)",
    re.IGNORECASE,
)
# "I'm X" / "I am X": a name only when capitalised and not a word fans use there ("I'm Going")
_IM = re.compile(r"\b(i'm|i am|im|i’m)\s+([A-Z][a-z'-]+)\b", re.IGNORECASE)
_HERE = re.compile(r"^\s*([A-Z][a-z'-]+)\s+here\b")
_SIGN_OFF = re.compile(
    r"((?:thanks|thank you|thx|cheers|love|xo+|regards)[,!.\s]*)[-~]?\s*([A-Z][a-z'-]+)\s*[.!]*$"
)
_NOT_NAMES = {
    # words that follow "I'm" / "this is" / "it's" in fans' questions, capitalised or not
    "a", "an", "the", "so", "not", "just", "really", "very", "trying", "going", "looking",
    "wondering", "asking", "here", "still", "also", "new", "from", "in", "at", "on", "sure",
    "sorry", "confused", "excited", "curious", "waiting", "about", "for", "my", "your", "her",
    "his", "our", "their", "that", "this", "it", "what", "when", "where", "how", "why", "who",
    "ok", "okay", "fine", "good", "great", "happy", "sad", "mad", "upset", "done", "back",
    "nova", "vale", "gonna", "getting", "having", "being", "unable", "able", "late", "early",
    "all", "no", "yes", "real", "legit", "true", "weird", "annoying", "ridiculous", "crazy",
    "amazing", "awesome", "insane", "wrong", "right", "over", "up", "out", "off", "too",
    "interested", "planning", "hoping", "thinking", "coming", "buying", "there", "because",
    "literally", "actually", "honestly", "finally", "already", "almost", "such", "monday",
    "tickets", "ticket", "presale", "merch", "tour", "vip", "canceled", "cancelled", "raining",
    "snowing", "happening", "fake", "free", "possible", "supposed", "allowed", "open",
    "closed", "sold", "live", "available", "stuck", "lost", "broke", "obsessed", "dying",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tonight", "today",
    "tomorrow", "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december", "glasshouse",
}  # fmt: skip


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """The text with personal details replaced by placeholders; `names`: the fan's own (the
    profile's first and last name), replaced wherever they appear."""
    out = _EMAIL.sub(EMAIL, text)
    out = _URL.sub(_link, out)
    out = _HANDLE.sub(HANDLE, out)
    out = _PHONE.sub(_phone, out)
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len)[::-1]:
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", NAME, out, flags=re.IGNORECASE)
    out = _NAME_INTRO.sub(_intro, out)
    out = _IM.sub(_im, out)
    out = _HERE.sub(lambda m: m.group(0) if _common(m.group(1)) else f"{NAME} here", out)
    out = _SIGN_OFF.sub(lambda m: m.group(0) if _common(m.group(2)) else m.group(1) + NAME, out)
    return re.sub(r"\s+", " ", out).strip()


def profile_names(profile: Mapping[str, Any] | None) -> list[str]:
    """The names a fan's profile knows (first, last, full)."""
    profile = profile or {}
    found = [profile.get(k) for k in ("first_name", "last_name", "name", "full_name")]
    return [str(n) for n in found if isinstance(n, str) and n.strip()]


def _link(match: re.Match[str]) -> str:
    """A bare site says what the fan asks about; its path may name them: keep the site only."""
    url = match.group(0).rstrip(".,!?)")
    tail = match.group(0)[len(url) :]
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url, flags=re.IGNORECASE)
    host, _, path = host.partition("/")
    host = host.split("?")[0]
    if not path.strip("/") and "?" not in url:
        return host + tail
    return f"{host}/{LINK}{tail}"


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = sum(ch.isdigit() for ch in raw)
    if digits < 7 or _ISO_DATE.match(raw.strip()):
        return raw
    return PHONE


def _intro(match: re.Match[str]) -> str:
    lead, word = match.group(1), match.group(2)
    lowered = lead.lower()
    if lowered in ("this is", "it's", "its") and (not word[0].isupper() or _common(word)):
        return match.group(0)  # "this is so exciting", "it's Tuesday": not introductions
    if _common(word):
        return match.group(0)
    return f"{lead} {NAME}"


def _im(match: re.Match[str]) -> str:
    word = match.group(2)
    if not word[0].isupper() or _common(word):
        return match.group(0)
    return f"{match.group(1)} {NAME}"


def _common(word: str) -> bool:
    return word.lower().strip("'-") in _NOT_NAMES or word.startswith("<")
