"""STOP / START / HELP: the decisions that win over everything else on the inbound path (pure).

US carriers (CTIA) and Twilio treat these single words as opt-out: STOP, STOPALL, UNSUBSCRIBE,
CANCEL, END, QUIT, OPTOUT, REVOKE. We also honour plain-language requests such as "stop texting
me": a fan who asks to be left alone must never receive another marketing text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "STOP ALL",
     "OPT OUT", "UNSUB"}
)  # fmt: skip
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "SUBSCRIBE", "RESUBSCRIBE"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_OPT_OUT_PHRASES = re.compile(
    r"\b("
    r"stop (texting|messaging|sending|contacting|txting|msging)( me| us)?"
    r"|(please |pls |plz )?stop( it)?( please| pls| plz)?$"
    r"|(unsubscribe|remove|take) me( off| from)?"
    r"|(do not|dont|don't) (text|message|contact) me"
    r"|no more (texts|messages|msgs)"
    r"|opt me out"
    r"|leave me alone"
    r")\b",
    re.IGNORECASE,
)

Kind = Literal["opt_out", "opt_in", "help"]


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    keyword: str  # what matched, for the event log (never the whole text)
    provider_handled: bool = False  # Twilio Advanced Opt-Out already answered the fan


def normalise(text: str) -> str:
    """Upper-case words only: punctuation, emoji and extra spaces removed."""
    text = unicodedata.normalize("NFKC", text)
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(kept.upper().split())


def classify(text: str, *, subscription: str, opt_out_type: str | None = None) -> Decision | None:
    """The compliance decision for an inbound text, or None when the bot may carry on."""
    if opt_out_type:
        kind = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}.get(opt_out_type.upper())
        if kind:
            return Decision(kind, opt_out_type.upper(), provider_handled=True)  # type: ignore[arg-type]
    words = normalise(text)
    if words in OPT_OUT_WORDS:
        return Decision("opt_out", words)
    if words in OPT_IN_WORDS or (words == "YES" and subscription == "unsubscribed"):
        # YES re-subscribes only someone who opted out (as carriers do); otherwise it's an answer
        return Decision("opt_in", words)
    if words in HELP_WORDS:
        return Decision("help", words)
    if len(text) <= 80 and _OPT_OUT_PHRASES.search(" ".join(text.split())):
        return Decision("opt_out", "phrase")
    return None
