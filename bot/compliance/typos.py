"""Typo tolerance for one-word compliance texts ("stahp", "stopp", "sotp", "unsubscibe") (pure).

Runs after the exact keywords miss and only on a text of one word. A word is compared, with
repeated letters collapsed ("stoooop" -> "STOP"), to each keyword by optimal-string-alignment
distance (rapidfuzz): a typo, a missing or extra letter, two letters swapped. Guards keep real
words from colliding with a keyword: the first letter must match, short keywords allow one edit
at most (QUIT and END none: "quite", "and"), the nearest keyword must be unique, and common
words near a keyword ("shop", "step", "spot", "stars", "hell") are never typos.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import OSA

# keyword -> the decision it stands for (single words only; the exact check saw them first)
TARGETS = {
    "STOP": "opt_out", "STOPALL": "opt_out", "UNSUBSCRIBE": "opt_out", "UNSUB": "opt_out",
    "CANCEL": "opt_out", "OPTOUT": "opt_out", "REVOKE": "opt_out", "REMOVE": "opt_out",
    "START": "opt_in", "UNSTOP": "opt_in", "SUBSCRIBE": "opt_in", "RESUBSCRIBE": "opt_in",
    "STAHP": "opt_out", "HELP": "help",
}  # fmt: skip
# real words one or two edits from a keyword: a fan who sends one means the word
REAL_WORDS = frozenset(
    """SHOP SHOPS STEP STEPS SPOT SPOTS STOW STOOD STORE STORY STOMP STOCK SLOP SNOT SHOT SOUP
    SOAP STAY STOA SOTO SCOOP STUPID SOP SOPS STEPH STAN STAND STAR STARS STARE STARK STARR
    SMART STAT STATE STAIR STRAP STRIP SWEET STUNT STAMP STASH STAHL SNAP SLAP SWAP STAB STAG
    HELL HELLS HELD HELM HEAP HEMP HELO HELLA HEAL HEEL HEAL HELIX HERP HEWP HALL HULL HEAT
    CANCER CANCELS CANDLE CANNOT CANCUN CANCAN CANVAS CONCERT CONSOLE REMOTE REMOVES REMOVED
    REVOKED REVIVE REVOLVE RECORD RESOLVE REMOTELY SUBSCRIBED SUBSCRIBER UNSTOPPABLE""".split()  # noqa: SIM905
)
_RUNS = re.compile(r"(.)\1+")


def collapse(word: str) -> str:
    """Repeated letters once: "STOOOPPP" -> "STOP", "STOPALL" -> "STOPAL"."""
    return _RUNS.sub(r"\1", word)


_COLLAPSED = {collapse(k): kind for k, kind in TARGETS.items()}


def budget(keyword: str) -> int:
    """Edits allowed for a keyword: none below 4 letters, one up to 9, two beyond."""
    n = len(keyword)
    return 0 if n < 4 else 1 if n <= 9 else 2


# opt-out wording typed without its spaces ("stoptexting", "removeme", "nomore")
RUN_TOGETHER = frozenset(
    """STOPTEXTING STOPTEXTINGME STOPMESSAGING STOPMESSAGINGME STOPSENDING STOPTHETEXTS
    STOPTEXTS STOPMESSAGES REMOVEME UNSUBSCRIBEME UNSUBME OPTMEOUT NOMORE NOMORETEXTS
    NOMOREMESSAGES LEAVEMEALONE STOPPLEASE PLEASESTOP STOPPLS STOPNOW""".split()  # noqa: SIM905
)


def typo_of(word: str) -> tuple[str, str] | None:
    """(kind, keyword) when `word` (one normalised word) is a typo of exactly one keyword."""
    if word in RUN_TOGETHER:
        return "opt_out", word
    if not word.isalpha() or word in REAL_WORDS or len(word) < 3:
        return None
    squeezed = collapse(word)
    if squeezed in REAL_WORDS:
        return None
    if squeezed in _COLLAPSED:
        return _COLLAPSED[squeezed], squeezed
    best: list[tuple[int, str]] = []
    for keyword in _COLLAPSED:
        if keyword[0] != squeezed[0]:
            continue
        limit = budget(keyword)
        d = OSA.distance(squeezed, keyword, score_cutoff=limit)
        if d <= limit:
            best.append((d, keyword))
    if not best:
        return None
    best.sort()
    if (
        len(best) > 1
        and best[0][0] == best[1][0]
        and _COLLAPSED[best[0][1]] != _COLLAPSED[best[1][1]]
    ):
        return None  # as near to an opt-in as to an opt-out: not ours to guess
    return _COLLAPSED[best[0][1]], best[0][1]
