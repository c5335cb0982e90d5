"""Durations in content (`after_signup: 1h`, `wait: 3d`, `no_reply_after: 2d`): 30m, 1h, 3d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WAIT = timedelta(days=7)  # a `wait` step holds a flow at most a week (then: a new flow)


def parse_duration(text: object) -> timedelta:
    """'30m' -> 30 minutes; ValueError (which pydantic reports at the key's line) otherwise."""
    match = _DURATION.match(str(text)) if isinstance(text, str | int) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write e.g. 30m, 1h, 3d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_clock(text: object) -> tuple[int, int]:
    """'09:00' -> (9, 0): a local time of day."""
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*$", str(text))
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f'{text!r} is not a time of day: write e.g. "09:00"')
    return int(match.group(1)), int(match.group(2))
