"""The condition language: safe, None-tolerant, checked at load time."""

from __future__ import annotations

import pytest

from bot.flows.conditions import check_expression, evaluate, referenced_slots

CONTEXT = {
    "slots": {"zip": "90210", "birthday": "2021-05-01", "age": 17.0, "agree": False},
    "fan": {"first_name": "Ana", "tags": ["vip", "la"], "subscription": "subscribed"},
    "message": {"text": "hi", "num_media": 1},
    "intent": {"name": "greet", "confidence": 0.93},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("slots.zip", True),
        ("slots.missing", False),
        ("slots.missing.deeper == null", True),
        ("slots.birthday.year > 2020 and slots.birthday.month == 5", True),
        ("slots.missing > 3", False),  # None compared with a number is false, not an error
        ("not slots.agree", True),
        ("'vip' in fan.tags and fan.subscription == 'subscribed'", True),
        ("'x' in fan.missing", False),
        ("message.num_media >= 1 or false", True),
        ("intent.name == 'greet' and intent.confidence > 0.9", True),
        ("slots.age < 18 and slots.age != 0", True),
        ("slots['zip'] == '90210'", True),
        ("len(fan.tags) == 2", True),
        ("true and not null", True),
    ],
)
def test_evaluate(expr, expected):
    assert evaluate(expr, CONTEXT) is expected


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("slots.zip ==", "not a valid expression"),
        ("user.zip", "unknown name 'user'"),
        ("slots.__class__", "attribute '__class__'"),
        ("open('x')", "only len() may be called"),
        ("[x for x in slots]", "ListComp is not allowed"),
        ("slots.zip = 3", "not a valid expression"),
    ],
)
def test_check_rejects(expr, fragment):
    with pytest.raises(ValueError, match="condition") as excinfo:
        check_expression(expr)
    assert fragment in str(excinfo.value)


def test_missing_context_names_are_empty():
    assert evaluate("fan.first_name == null", {}) is True


def test_referenced_slots():
    assert referenced_slots("slots.a and slots['b'] or fan.c == slots.d.year") == {"a", "b", "d"}
