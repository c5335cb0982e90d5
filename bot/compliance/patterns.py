"""Rules around the phrase model: explicit opt-out wording that always wins, and precision
guards for texts that merely contain "stop" (pure).

An explicit request ("stop texting me", "unsubscribe", "take my number off") is an opt-out
whatever else the text says ("can't stop listening but stop texting me"). A guard ("can't stop
listening", "next stop on the tour", "don't stop the music", "when does the tour stop in
denver") vetoes the phrase model's opt-out when nothing explicit is there.
"""

from __future__ import annotations

import re

_TEXTS = r"(texts?|txts?|messages?|msgs?|sms|notifications?|alerts?|mensajes|messaggi|mensagens)"
_SEND = r"(text|txt|message|msg|contact|sms|send|email)(ing|in)?"

EXPLICIT_OPT_OUT = re.compile(
    r"\b("
    rf"(stop|quit|cease|end) {_SEND}(?! (you|u|ya|nova|her|him|them)\b)( me| us| this number)?"
    rf"|(stop|end|cancel|block) (all |the |these |those |your |ur |my )*{_TEXTS}"
    r"|unsubscribe|unsub me|opt (me )?out|opting out"
    r"|(remove|delete) (me|my (phone )?number|this number)\b"
    r"|(take|get) (me|my (phone )?number|this number) (off|out of)\b"
    rf"|(do not|dont|don't|never|pls don't|please don't) {_SEND} me"
    rf"|no more {_TEXTS}"
    rf"|(don't|dont|do not|no longer) (want|wish) (to (get|receive) )?(any )?(more )?(of )?(your |these |the |ur )?{_TEXTS}"
    r"|leave me alone"
    r"|revoke (my )?consent|withdraw (my )?consent"
    r")\b",
    re.IGNORECASE,
)

# "stop" (or end, cancel, quit) in a sense that is not about the texts
GUARDS = re.compile(
    r"\b("
    r"(can'?t|cannot|cant|won'?t|wont|never|don'?t|dont|do not|not gonna|couldn'?t) (ever )?"
    r"(stop|quit|end|cancel)\b"
    r"|(next|first|last|final|tour|bus|pit|only|each|every|another) stops?\b"
    r"|stops? (in|at|by|near|through|on|off at)\b"
    r"|stopping (in|at|by|near|through)\b"
    r"|(make|making|add|adding|plan|planning) (a |another |one more )?stop"
    r"|non ?-?stop|unstoppable|nothing (can|could|will) stop"
    r"|stop (listening|playing|dancing|singing|crying|thinking|smiling|streaming|watching|"
    r"loving|screaming|laughing|replaying|the hate|teasing|making me)"
    r"|(show|concert|tour|date|presale|sale|album) (end|ends|ended|ending)\b"
    r"|(show|concert|tour|date|gig|event)s? (was |is |got |been |being )?(cancell?ed|cancell?ing)"
    # "cancelled" as a state is news about an event ("tell me it's not cancelled"); a fan
    # opting out cancels, in the imperative ("cancel", "cancel my texts": explicit above)
    r"|(it'?s|its|is|isn'?t|not|was|wasn'?t|be|been|being|get|got|getting) (it |that |this )?"
    r"(\w+ )?cancell?ed\b"
    r"|cancel (my|the|an|a) (order|ticket|tickets|upgrade|purchase|booking|hotel|vip|payment)"
    # what the fan did elsewhere: "i unsubscribed from spotify", "i quit social media"
    r"|\b(i|we) (just |already |finally )?(unsubscribed|unsubbed|quit|stopped|cancell?ed) "
    r"(from |my |using |buying |going |social |spotify|netflix|apple|youtube|tiktok|instagram)"
    r")",
    re.IGNORECASE,
)


# "don't stop texting me", "never stop sending these": the opposite of an opt-out
_NEGATED = re.compile(
    r"(don'?t|dont|do not|never|can'?t|cant|cannot|won'?t|wont|not|not going to|not gonna) (ever )?$",
    re.IGNORECASE,
)


def explicit_opt_out(text: str) -> bool:
    return any(
        not _NEGATED.search(text[max(0, m.start() - 16) : m.start()])
        for m in EXPLICIT_OPT_OUT.finditer(text)
    )


def guarded(text: str) -> bool:
    """The text uses stop / end / cancel in a sense that is not an opt-out."""
    return GUARDS.search(text) is not None


_CLAUSE_BREAK = re.compile(r"[.!?;:\n]+|,|\s+-+\s+|\b(?:but|though|although|so)\b", re.IGNORECASE)


def clauses(text: str, limit: int = 4) -> list[str]:
    """The sentences and clauses of a longer text (two words or more), at most `limit`."""
    parts = [" ".join(p.split()) for p in _CLAUSE_BREAK.split(text)]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts[:limit] if len(parts) > 1 else []
