"""A/B broadcasts (pure): two to five bodies, a test share of the segment, a winner after a set
time by click-through or reply rate, then sent to the rest.

Where it sits: `BroadcastService` (bot.audience.broadcasts) stores an `ABTest` with the
broadcast; `bot.storage.broadcast_store` splits the test share evenly and at random, the same
way every time for a fan (a hash of fan and broadcast id, computed by the database), and holds
the rest (their `broadcast_recipients` rows have no variant yet). At `decide_at` the scheduler
picks the winner (`pick_winner`) and, with `send_winner: auto`, writes the rest's texts with
its body; with `manual`, `fanline broadcast send-winner N` or the inbox does. A fan is texted
once whatever happens: the recipients' UNIQUE (broadcast, fan) and the broadcast texts' unique
index stand as for any broadcast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import ConfigError, Location

LABELS = "ABCDE"
MIN_VARIANTS, MAX_VARIANTS = 2, 5
WINNER_BY = ("ctr", "replies")
SEND_WINNER = ("auto", "manual")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$", re.IGNORECASE)
_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
MAX_DECIDE_AFTER_S = 7 * 86400
HASH_MODULUS = 1_000_003  # a prime: the fan's bucket is (id * a + broadcast * b) mod it


@dataclass(frozen=True, slots=True)
class Variant:
    label: str
    body: str
    id: int | None = None  # broadcast_variants.id once stored
    winner: bool = False


@dataclass(frozen=True, slots=True)
class ABTest:
    variants: tuple[Variant, ...]
    test_share: float = 0.2  # of the segment, split evenly over the variants
    winner_by: str = "ctr"
    decide_after_s: int = 7200
    send_winner: str = "auto"

    def by_label(self, label: str) -> Variant:
        for v in self.variants:
            if v.label == label.upper():
                return v
        raise ConfigError(f"no variant {label!r} (this broadcast has "
                          f"{', '.join(v.label for v in self.variants)})")  # fmt: skip

    @property
    def winner(self) -> Variant | None:
        return next((v for v in self.variants if v.winner), None)


@dataclass(frozen=True, slots=True)
class VariantStats:
    label: str
    sent: int
    clicks: int  # fans who tapped a link of their text (people, not previews or bots)
    replies: int  # fans who texted back within the reply window
    winner: bool = False

    @property
    def ctr(self) -> float:
        return self.clicks / self.sent if self.sent else 0.0

    @property
    def reply_rate(self) -> float:
        return self.replies / self.sent if self.sent else 0.0


def pick_winner(stats: list[VariantStats], winner_by: str) -> str:
    """The label with the best rate; a tie goes to more texts sent, then to the earlier label
    (A is the text as first written: with no signal at all it is what the rest get)."""

    def rank(s: VariantStats) -> tuple[float, int, int]:
        rate = s.ctr if winner_by == "ctr" else s.reply_rate
        return (rate, s.sent, -LABELS.index(s.label))

    return max(stats, key=rank).label


def ab_test(
    body: str,
    variants: list[str],
    *,
    test_share: str | float | None = None,
    winner_by: str | None = None,
    decide_after: str | int | None = None,
    send_winner: str | None = None,
) -> ABTest | None:
    """The command line's (or the inbox form's) A/B options -> an ABTest; None without
    `--variant`. `body` is variant A; each of `variants` is "B: text"."""
    if not variants:
        if any(v is not None for v in (test_share, winner_by, decide_after, send_winner)):
            raise ConfigError("A/B options need at least one --variant \"B: text\"",
                              Location("--variant"))  # fmt: skip
        return None
    parsed = [Variant("A", body)]
    for raw in variants:
        label, sep, text = raw.partition(":")
        label = label.strip().upper()
        if not sep or len(label) != 1 or label not in LABELS or not text.strip():
            raise ConfigError(f'expected "B: text" (labels {LABELS[1:]}), got {raw[:40]!r}',
                              Location("--variant"))  # fmt: skip
        if label in {v.label for v in parsed}:
            raise ConfigError(f"variant {label} is given twice", Location("--variant"))
        parsed.append(Variant(label, text.strip()))
    if not MIN_VARIANTS <= len(parsed) <= MAX_VARIANTS:
        raise ConfigError(f"an A/B broadcast has {MIN_VARIANTS} to {MAX_VARIANTS} variants "
                          f"(the text is A), got {len(parsed)}", Location("--variant"))  # fmt: skip
    parsed.sort(key=lambda v: v.label)
    return ABTest(
        variants=tuple(parsed),
        test_share=parse_share(test_share) if test_share is not None else 0.2,
        winner_by=_choice(winner_by or "ctr", WINNER_BY, "--winner-by"),
        decide_after_s=parse_duration(decide_after) if decide_after is not None else 7200,
        send_winner=_choice(send_winner or "auto", SEND_WINNER, "--send-winner"),
    )


def parse_share(value: str | float) -> float:
    """ "20%", "20" or 0.2 -> 0.2; the test share is above 0 and below 100 %."""
    where = Location("--test-share")
    try:
        if isinstance(value, str):
            text = value.strip()
            number = (
                float(text.rstrip("%")) / 100
                if text.endswith("%") or float(text) > 1
                else float(text)
            )
        else:
            number = float(value)
    except ValueError:
        raise ConfigError(f"expected a share such as 20%, got {value!r}", where) from None
    if not 0 < number < 1:
        raise ConfigError(f"the test share is above 0 % and below 100 %, got {value!r}", where)
    return number


def parse_duration(value: str | int) -> int:
    """ "90m", "2h", "1d" (or seconds) -> seconds; at most 7 days."""
    where = Location("--decide-after")
    if isinstance(value, int):
        seconds = value
    else:
        m = _DURATION.match(value)
        if m is None:
            raise ConfigError(f"expected a duration such as 2h, 90m or 1d, got {value!r}", where)
        seconds = round(float(m.group(1)) * _SECONDS[m.group(2).lower()])
    if not 0 < seconds <= MAX_DECIDE_AFTER_S:
        raise ConfigError("the winner is decided after more than 0 and at most 7 days", where)
    return seconds


def _choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    if value not in choices:
        raise ConfigError(f"expected one of {', '.join(choices)}, got {value!r}", Location(flag))
    return value
