"""Free text to typed slot values."""

from __future__ import annotations

from datetime import date

import pytest

from bot.flows.model import Slot
from bot.flows.slot_types import parse_slot_value

TODAY = date(2026, 6, 1)


def parse(slot_type: str, text: str, **extra: object):
    return parse_slot_value(Slot(type=slot_type, **extra), text, today=TODAY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Yes!", True), ("yeah", True), ("👍", True), ("OK", True), ("Nope.", False), ("n", False),
     ("nah", False), ("maybe", None), ("", None), ("yes no", None)],
)  # fmt: skip
def test_bool(text, expected):
    assert parse("bool", text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42.0), (" 3.5 ", 3.5), ("-2", -2.0), ("1,000", 1000.0), ("$20", 20.0),
     ("twenty", 20.0), ("twenty-five", 25.0), ("seven", 7.0), ("abc", None), ("", None),
     ("1.2.3", None), ("٣", 3.0)],
)  # fmt: skip
def test_float(text, expected):
    assert parse("float", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("March 3", "2026-03-03"), ("3/14/2001", "2001-03-14"), ("14 March 2001", "2001-03-14"),
     ("2001-03-14", "2001-03-14"), ("Feb 30 2001", None), ("banana", None), ("3", None),
     ("", None), ("March 3 1066", None), ("🎂", None), ("3月14日", None)],
)  # fmt: skip
def test_date(text, expected):
    assert parse("date", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Ana@Example.COM", "Ana@example.com"), (" mailto:b@x.io ", "b@x.io"), ("b@", None),
     ("a..b@x.com", None), ("not an email", None), ("", None)],
)  # fmt: skip
def test_email(text, expected):
    assert parse("email", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90210", "90210"), ("90210-1234", "90210-1234"), ("902101234", "90210-1234"),
     ("k1a0b1", "K1A 0B1"), ("SW1A 1AA", "SW1A 1AA"), ("m1 1ae", "M1 1AE"), ("1234", None),
     ("hello", None), ("", None)],
)  # fmt: skip
def test_postal_code(text, expected):
    assert parse("postal_code", text) == expected


def test_categorical_by_name_number_and_non_latin():
    values = ["Small", "Medium", "東京"]
    assert parse("categorical", "medium!", values=values) == "Medium"
    assert parse("categorical", "3", values=values) == "東京"
    assert parse("categorical", "東京", values=values) == "東京"
    assert parse("categorical", "4", values=values) is None
    assert parse("categorical", "0", values=values) is None
    assert parse("categorical", "huge", values=values) is None


def test_text_and_any():
    assert parse("text", "  Zoë 🎉 ") == "Zoë 🎉"
    assert parse("text", "Привет") == "Привет"
    assert parse("text", "   ") is None
    assert parse("any", "") == ""


@pytest.mark.parametrize(
    "text,expected",
    [("maya", "Maya"), ("Jean-Luc", "Jean-Luc"), ("O'Brien", "O'Brien"), ("José María", "José María"),
     ("李华", "李华"), ("when is the tour?", None), ("march 32", None), ("hi", None),
     ("yes", None), ("a b c d", None), ("", None), ("🎉", None)],
)  # fmt: skip
def test_person_names(text: str, expected: str | None) -> None:
    from bot.flows.slot_types import parse_person_name

    assert parse_person_name(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90210", "90210"), ("my zip is 90210", "90210"), ("its m5v 2t6", "M5V 2T6"),
     ("toronto?", "Toronto"), ("Montreal", "Montréal"), ("im in Austin TX", "Austin"),
     ("denver area lol", "Denver"), ("nyc", "New York City"), ("i live in salt lake city", "Salt Lake City"),
     ("next tuesday", None), ("what about the tour", None), ("Maya", None), ("", None)],
)  # fmt: skip
def test_location_is_a_postal_code_or_a_city(text, expected):
    assert parse("location", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("NL123455", "NL123455"), ("nl-123 455", "nl-123 455"), ("code: NL123455", "NL123455"),
     ('"NOVA"', "NOVA"), ("ABC", "ABC"), ("why was it changed tho", None), ("2 tickets", None),
     ("thanks", None), ("is my ticket still valid or", None), ("ok", None)],
)  # fmt: skip
def test_code_looks_like_a_code(text, expected):
    assert parse("code", text) == expected
