"""The frequency cap: at most N marketing texts per fan per window (issue 18), decided at send time.

Marketing texts are the ones a fan did not ask for: `broadcast` and `timed` (a flow that starts
in time). Replies to a fan's own text, compliance texts (STOP, HELP), agents' answers and
system texts are never capped. The outbox's guarded claim (bot.storage.outbox) locks the fans
of a batch, counts their marketing texts claimed within the window and asks `over_cap` which
of the batch go; the rest become `skipped` with `REASON` and are never sent later.
Pure: values in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.errors import ConfigError, Location

MARKETING_KINDS = ("broadcast", "timed")
REASON = "frequency cap"
# a marketing text counts once it left the queue or may have (a failed one never reached the fan)
COUNTED = ("sending", "sent", "delivered", "read", "undelivered", "in_doubt", "unknown")

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    texts: int = 1
    per: timedelta = timedelta(hours=16)


DEFAULT = FrequencyCap()  # the default: one marketing text per fan per 16 hours


def over_cap(
    cap: FrequencyCap | None,
    candidates: Iterable[tuple[int, int]],
    recent: Mapping[int, int],
) -> set[int]:
    """The ids of the candidates (message id, fan id), oldest first, beyond each fan's
    allowance: `cap.texts` less the fan's marketing texts already counted in the window."""
    if cap is None:
        return set()
    used = dict(recent)
    over = set()
    for message_id, fan in sorted(candidates):
        if used.get(fan, 0) >= cap.texts:
            over.add(message_id)
        else:
            used[fan] = used.get(fan, 0) + 1
    return over


def parse_duration(value: Any) -> timedelta | None:
    """`16h`, `90m`, `1d`, `1h30m`, `45s`; a bare number is hours. None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(hours=value) if value > 0 else None
    text = str(value).strip().lower().replace(" ", "")
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    return timedelta(seconds=seconds) if seconds > 0 else None


def frequency_cap_settings(value: Any, path: str, line: int | None) -> FrequencyCap | None:
    """`fanline.frequency_cap: {texts: 1, per: 16h}`; `off` (or false) turns it off."""
    key = "fanline.frequency_cap"
    if value is None:
        return DEFAULT
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    if not isinstance(value, dict):
        raise ConfigError("expected {texts: N, per: DURATION} or off", Location(path, line, key))
    lines = getattr(value, "key_lines", {})
    unknown = sorted(set(value) - {"texts", "per"})
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}: use texts and per",
                          Location(path, lines.get(unknown[0], line), f"{key}.{unknown[0]}"))  # fmt: skip
    texts = value.get("texts", DEFAULT.texts)
    if isinstance(texts, bool) or not isinstance(texts, int) or texts < 1:
        raise ConfigError(f"must be a whole number of texts, at least 1, got {texts!r}",
                          Location(path, lines.get("texts", line), f"{key}.texts"))  # fmt: skip
    per = parse_duration(value.get("per", "16h"))
    if per is None:
        raise ConfigError(
            f"must be a duration such as 16h, 90m or 1d, got {value.get('per')!r}",
            Location(path, lines.get("per", line), f"{key}.per"),
        )
    return FrequencyCap(texts=texts, per=per)
