"""Quiet hours for broadcasts: each fan's time zone and when their sending window next opens.

Pure. The broadcast enqueuer (`bot.storage.broadcast_store`) turns these tables into one SQL
CASE expression, so a million fans are placed in their window without a row reaching Python;
the outbox claim (`bot.storage.outbox`) checks each broadcast text again when it is about to be
sent, so a text paced or resumed past the window's end waits for its next opening.
A fan's zone, first match wins: `profile.timezone` (set at web signup), the US ZIP's state
(`ZIP3_STATES` below), the phone number's country and area code (libphonenumber's time-zone
data), else the configured default zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import tzdata

DEFAULT_ZONE = "America/New_York"

# First three digits of a US ZIP code -> state (USPS prefix ranges, inclusive).
ZIP3_STATES: tuple[tuple[int, int, str], ...] = (
    (5, 5, "NY"), (6, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"), (30, 38, "NH"),
    (39, 49, "ME"), (50, 59, "VT"), (60, 69, "CT"), (70, 89, "NJ"), (100, 149, "NY"),
    (150, 196, "PA"), (197, 199, "DE"), (200, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"),
    (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 349, "FL"),
    (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"), (398, 399, "GA"), (400, 427, "KY"),
    (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"), (500, 528, "IA"), (530, 549, "WI"),
    (550, 567, "MN"), (570, 577, "SD"), (580, 588, "ND"), (590, 599, "MT"), (600, 629, "IL"),
    (630, 658, "MO"), (660, 679, "KS"), (680, 693, "NE"), (700, 714, "LA"), (716, 729, "AR"),
    (730, 749, "OK"), (750, 799, "TX"), (800, 816, "CO"), (820, 831, "WY"), (832, 838, "ID"),
    (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"), (885, 885, "TX-W"), (889, 898, "NV"),
    (900, 961, "CA"), (967, 968, "HI"), (969, 969, "GU"), (970, 979, "OR"), (980, 994, "WA"),
    (995, 999, "AK"),
)  # fmt: skip

# A state's main zone (states split between zones get the zone most of their people live in).
_ZONE_STATES = {
    "America/New_York": ("ME", "NH", "VT", "MA", "RI", "CT", "NY", "NJ", "PA", "DE", "MD", "DC",
                         "VA", "WV", "NC", "SC", "GA", "FL", "OH", "MI", "IN", "KY"),
    "America/Chicago": ("AL", "MS", "TN", "IL", "WI", "MN", "IA", "MO", "AR", "LA", "OK", "KS",
                        "NE", "SD", "ND", "TX"),
    "America/Denver": ("MT", "WY", "CO", "NM", "UT", "ID", "TX-W"),
    "America/Phoenix": ("AZ",),
    "America/Los_Angeles": ("CA", "NV", "OR", "WA"),
    "America/Anchorage": ("AK",),
    "Pacific/Honolulu": ("HI",),
    "America/Puerto_Rico": ("PR",),
    "Pacific/Guam": ("GU",),
}  # fmt: skip
STATE_ZONES: dict[str, str] = {st: zone for zone, states in _ZONE_STATES.items() for st in states}

_PREFERRED = ("America/New_York", "Europe/London")  # same clock as the alphabetically first
_PHONE_PREFIX_DIGITS = 4  # country code + NANP area code: enough for a zone, keeps SQL small


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Texts go out between `start` and `end` local time (default 08:00-21:00)."""

    start: time = time(8, 0)
    end: time = time(21, 0)

    @classmethod
    def parse(cls, start: str = "08:00", end: str = "21:00") -> QuietHours:
        try:
            return cls(time.fromisoformat(start), time.fromisoformat(end))
        except ValueError as exc:
            raise ValueError(f"quiet hours must look like 08:00, got {start!r}-{end!r}") from exc

    def opens_at(self, zone: str, at: datetime) -> datetime | None:
        """None when `at` is inside the fan's window; else the UTC instant it next opens.

        `start == end` means no quiet hours at all (tests, or a fan line that texts any time).
        """
        if self.start == self.end:
            return None
        local = at.astimezone(_zone(zone))
        now = local.time()
        inside = (
            self.start <= now < self.end
            if self.start <= self.end
            else (now >= self.start or now < self.end)  # a window across midnight
        )
        if inside:
            return None
        day = local.date() if now < self.start else local.date() + timedelta(days=1)
        opening = datetime.combine(day, self.start, tzinfo=local.tzinfo)
        return opening.astimezone(UTC)


@lru_cache(maxsize=64)
def window(start: str, end: str) -> QuietHours:
    """A broadcast's stored window, parsed once (the outbox claim asks for every text)."""
    return QuietHours.parse(start, end)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def zip3_zones() -> dict[int, str]:
    """ZIP prefix (0-999) -> zone, for every prefix the table covers (built once: the outbox
    claim asks for each broadcast text; callers do not change it)."""
    return {p: STATE_ZONES[state] for lo, hi, state in ZIP3_STATES for p in range(lo, hi + 1)}


def zone_for_zip(zip_code: str | None) -> str | None:
    digits = (zip_code or "").strip()[:3]
    if len(digits) != 3 or not digits.isdigit():
        return None
    return zip3_zones().get(int(digits))


@lru_cache(maxsize=1)
def phone_prefix_zones() -> dict[str, str]:
    """Digits after '+' (country code, then area code) -> zone, where the prefix has one zone.

    Prefixes spanning several zones with different offsets (all of +1, Russia...) are left out:
    such fans fall back to the default zone rather than a wrong guess.
    """
    out: dict[str, str] = {}
    probe = datetime(2025, 1, 15, tzinfo=UTC)
    for prefix, zones in tzdata.TIMEZONE_DATA.items():
        if len(prefix) > _PHONE_PREFIX_DIGITS or not zones:
            continue
        offsets = {probe.astimezone(_zone(z)).utcoffset() for z in zones}
        if len(offsets) == 1:
            out[prefix] = next((z for z in _PREFERRED if z in zones), zones[0])
    return out


def zone_for_phone(phone: str | None) -> str | None:
    digits = (phone or "").lstrip("+")
    table = phone_prefix_zones()
    for n in range(min(len(digits), _PHONE_PREFIX_DIGITS), 0, -1):
        if digits[:n] in table:
            return table[digits[:n]]
    return None


def zone_for_country(country: str | None) -> str | None:
    """A country's zone when it has only one (ISO code, as the signup form stores it)."""
    code = phonenumbers.country_code_for_region((country or "").upper())
    return phone_prefix_zones().get(str(code)) if code else None


def zone_for_fan(profile: dict[str, object], phone: str | None, default: str = DEFAULT_ZONE) -> str:
    """The same order the SQL expression applies; used for previews and single fans."""
    explicit = profile.get("timezone")
    if isinstance(explicit, str) and valid_zone(explicit):
        return explicit
    return zone_for_zip(str(profile.get("zip") or "")) or zone_for_phone(phone) or default
