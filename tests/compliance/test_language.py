"""Language identification for texts the NLU could not place (bot/compliance/language.py)."""

from __future__ import annotations

import pytest

from bot.compliance.language import identify, reply_language


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("hola, me puedes contar algo de tu vida", "es"),
        ("ciao, come stai oggi? sono molto felice", "it"),
        ("bonjour, je suis très content de vous écrire", "fr"),
        ("olá, tudo bem com você? estou muito feliz", "pt"),
        ("hallo, wie geht es dir heute? ich bin froh", "de"),
    ],
)
def test_other_languages_are_recognised(text: str, code: str) -> None:
    assert identify(text) == code


@pytest.mark.parametrize(
    "text",
    ["what's the weather like in your town", "ok", "lol", "ciao", "hola", "te amo", "90210 pls"],
)
def test_english_and_short_texts_are_not_judged(text: str) -> None:
    assert identify(text) is None


def test_only_when_the_nlu_found_nothing() -> None:
    spanish = "hola, me puedes contar algo de tu vida"
    assert reply_language(spanish, "out_of_scope", 0.9) == "es"
    assert reply_language(spanish, None, 0.0) == "es"
    assert reply_language(spanish, "ask_tour_dates", 0.3) == "es"  # below any trigger
    assert reply_language(spanish, "ask_tour_dates", 0.8) is None  # the flows answer it
