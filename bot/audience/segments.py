"""Segments: which fans a broadcast goes to, defined in `segments.yml` or on the command line.

Pure: parsing and validation into a frozen `Segment`. `bot.storage.segment_sql` compiles a
segment into one SQL condition (fans are never filtered in Python). Every segment implies
`subscription == subscribed`; the other criteria are ANDed:

    segments:
      la_vips:
        description: VIPs around Los Angeles who were active this month
        tags: [vip]                 # has every tag listed
        any_tags: [la, socal]       # has at least one of these
        not_tags: [staff]           # has none of these
        profile: {tier: gold}       # profile field equals (a list: any of)
        zip_prefix: ["900", "902"]  # ZIP starts with any of these
        state: [CA]                 # US state, from the ZIP
        country: [US]               # ISO country (a ZIP alone counts as US)
        birthday_month: [3]         # 1-12
        signed_up_after: 2025-01-01 # subscribed on/after (date, inclusive)
        signed_up_before: 2026-01-01
        replied_within_days: 30     # texted us in the last N days
        clicked: 12                 # tapped a tracked link of broadcast 12 (a person, not a preview)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.audience.quiet_hours import STATE_ZONES
from bot.errors import ConfigError, Location

_LIST_KEYS = ("tags", "any_tags", "not_tags", "zip_prefix", "state", "country")
_KEYS = (*_LIST_KEYS, "profile", "birthday_month", "signed_up_after", "signed_up_before",
         "replied_within_days", "clicked", "description")  # fmt: skip
_INT_KEYS = ("birthday_month", "replied_within_days", "clicked")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ZIP = re.compile(r"^[0-9]{1,5}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Bounds: beyond them a condition is a typo, and date arithmetic would overflow in SQL
MAX_DAYS = 36_500
MIN_YEAR, MAX_YEAR = 1900, 2100
MAX_VALUES = 1_000
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    any_tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    profile: tuple[tuple[str, tuple[str, ...]], ...] = ()
    zip_prefix: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    birthday_month: tuple[int, ...] = ()
    signed_up_after: date | None = None
    signed_up_before: date | None = None
    replied_within_days: int | None = None
    clicked: int | None = None  # a broadcast id

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = {k: list(v) for k, v in self.profile}
        for key in ("signed_up_after", "signed_up_before"):
            data[key] = data[key].isoformat() if data[key] else None
        return {k: v for k, v in data.items() if v not in (None, (), [], {}, "")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        data = dict(data)
        return parse_segment(data.pop("name", "segment"), data, Location("<stored segment>"))

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.to_json().items() if k not in ("name", "description")]
        return ", ".join(parts) or "every subscribed fan"


def load_segments(path: Path) -> dict[str, Segment]:
    """`segments.yml` -> segments by name; errors name the file, the line and the key."""
    from bot.flows.loader import read_yaml  # the YAML reader that remembers line numbers

    if not path.exists():
        return {}
    data = read_yaml(path) or {}
    section = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError("expected a `segments:` mapping", Location(str(path), 1, "segments"))
    lines = getattr(section, "key_lines", {})
    return {
        str(name): parse_segment(
            str(name), spec, Location(str(path), lines.get(name), f"segments.{name}")
        )
        for name, spec in section.items()
    }


def parse_cli(name: str, conditions: list[str]) -> Segment:
    """`--where tags=vip --where state=NY,NJ --where replied_within_days=30` -> a Segment."""
    spec: dict[str, Any] = {}
    for cond in conditions:
        key, sep, value = cond.partition("=")
        if not sep:
            raise ConfigError(f"expected KEY=VALUE, got {cond!r}", Location("--where", None, cond))
        key = key.strip()
        items = [v.strip() for v in value.split(",") if v.strip()]
        if key.startswith("profile."):
            spec.setdefault("profile", {})[key[len("profile.") :]] = items
        elif key in _INT_KEYS:  # the command line only has text: numbers are read here, once
            numbers = [_cli_int(v, Location("--where", None, key)) for v in items]
            spec[key] = numbers if key == "birthday_month" else (numbers or [None])[0]
        else:
            spec[key] = items if key in _LIST_KEYS else value.strip()
    return parse_segment(name, spec, Location("--where"))


def _cli_int(value: str, where: Location) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {value!r}", where) from None


def parse_segment(name: str, spec: Any, where: Location) -> Segment:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError("a segment is a mapping of criteria", where)
    lines = getattr(spec, "key_lines", {})

    def at(key: str) -> Location:
        return Location(where.file, lines.get(key, where.line), f"{where.key or name}.{key}")

    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown criterion {unknown[0]!r} (known: {', '.join(_KEYS)})", at(unknown[0])
        )
    values: dict[str, Any] = {k: _strings(spec[k], at(k)) for k in _LIST_KEYS if k in spec}
    if "state" in values:
        values["state"] = tuple(s.upper() for s in values["state"])
        bad = [s for s in values["state"] if s not in STATE_ZONES or "-" in s]
        if bad:
            raise ConfigError(f"unknown US state {bad[0]!r}", at("state"))
    if "country" in values:
        values["country"] = tuple(c.upper() for c in values["country"])
    if "profile" in spec:
        values["profile"] = _profile(spec["profile"], at("profile"))
    if "birthday_month" in spec:
        values["birthday_month"] = _months(spec["birthday_month"], at("birthday_month"))
    for key in ("signed_up_after", "signed_up_before"):
        if spec.get(key) is not None:
            values[key] = _date(spec[key], at(key))
    if spec.get("replied_within_days") is not None:
        values["replied_within_days"] = _days(
            spec["replied_within_days"], at("replied_within_days")
        )
    if spec.get("clicked") is not None:
        values["clicked"] = _broadcast_id(spec["clicked"], at("clicked"))
    _check_codes(values, at)
    description = spec.get("description")
    description = _text(description, at("description")) if description is not None else ""
    return Segment(name=name, description=description, **values)


def _check_codes(values: dict[str, Any], at: Callable[[str], Location]) -> None:
    if not all(_ZIP.match(z) for z in values.get("zip_prefix", ())):
        raise ConfigError("a ZIP prefix is 1 to 5 digits", at("zip_prefix"))
    if not all(_COUNTRY.match(c) for c in values.get("country", ())):
        raise ConfigError("a country is a two-letter ISO code such as US", at("country"))


def _strings(value: Any, where: Location) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if len(items) > MAX_VALUES:
        raise ConfigError(f"at most {MAX_VALUES} values, got {len(items)}", where)
    out = tuple(_text(v, where) for v in items)
    if not out or not all(out):
        raise ConfigError("expected one value or a list of values", where)
    return out


def _text(value: Any, where: Location) -> str:
    """A YAML scalar that must be text: numbers and yes/no are errors, never silently strings."""
    if isinstance(value, bool):
        raise ConfigError(
            f"expected text, got {str(value).lower()} (YAML reads yes/no/on/off as true/false): "
            "put it in quotes",
            where,
        )
    if isinstance(value, int | float):
        raise ConfigError(f"expected text, got the number {value!r}: put it in quotes", where)
    if isinstance(value, dict | list | tuple):
        raise ConfigError("expected text, got a nested mapping or list", where)
    if not isinstance(value, str):
        raise ConfigError(f"expected text, got {value!r}", where)
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise ConfigError(f"a value is at most {MAX_TEXT} characters", where)
    return text


def _profile(value: Any, where: Location) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError("expected a mapping of profile field -> value(s)", where)
    for key in value:
        if not isinstance(key, str) or not _FIELD.match(key):
            raise ConfigError(f"invalid profile field name {key!r}", where)
    return tuple((str(k), _strings(v, where)) for k, v in sorted(value.items()))


def _months(value: Any, where: Location) -> tuple[int, ...]:
    months = value if isinstance(value, list | tuple) else [value]
    if not months or any(_whole(m) is None or not 1 <= m <= 12 for m in months):
        raise ConfigError(f"months are whole numbers 1-12, got {value!r}", where)
    return tuple(months)


def _date(value: Any, where: Location) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(_text(value, where))
        except ValueError:
            raise ConfigError(f"expected a date like 2025-01-31, got {value!r}", where) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ConfigError(f"expected a date between {MIN_YEAR} and {MAX_YEAR}, got {value}", where)
    return value


def _days(value: Any, where: Location) -> int:
    number = _whole(value)
    if number is None or not 1 <= number <= MAX_DAYS:
        raise ConfigError(
            f"expected a whole number of days from 1 to {MAX_DAYS:,}, got {value!r}", where
        )
    return number


def _broadcast_id(value: Any, where: Location) -> int:
    number = _whole(value)
    if number is None or number < 1:
        raise ConfigError(f"expected a broadcast id, got {value!r}", where)
    return number


def _whole(value: Any) -> int | None:
    """An int that is not a bool (YAML's true is an int in Python), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
