"""Exact keywords and one-word typos: the first two checks of bot/compliance (pure)."""

from __future__ import annotations

import pytest

from bot.compliance import CARRIER_OPT_OUT, classify, normalise
from bot.compliance.typos import typo_of


def kind(text: str, subscription: str = "subscribed", **kw: object) -> str | None:
    decision = classify(text, subscription=subscription, **kw)  # type: ignore[arg-type]
    return decision.kind if decision else None


def test_the_carriers_and_twilios_list_is_there() -> None:
    assert {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "OPTOUT",
        "REVOKE",
    } <= CARRIER_OPT_OUT


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop!", " stop. ", "STOP 🛑", "StopAll", "unsubscribe",
                                  "cancel", "End", "quit", "optout", "opt-out", "revoke", "stop all"])  # fmt: skip
def test_carrier_keywords_opt_out(text: str) -> None:
    assert kind(text) == "opt_out"


def test_normalise_drops_accents_apostrophes_and_punctuation() -> None:
    assert normalise("  Arrêtez!! ") == "ARRETEZ"
    assert normalise("don’t") == "DONT"


@pytest.mark.parametrize("text", ["stahp", "stopp", "stoooop", "sotp", "stpo", "unsubscibe", "unsubscirbe",
                                  "usubscribe", "cancle", "optuot", "stopal", "STAHHP"])  # fmt: skip
def test_one_word_typos_opt_out(text: str) -> None:
    assert kind(text) == "opt_out", text


@pytest.mark.parametrize("text", ["shop", "step", "spot", "stars", "star", "smart", "stay", "hell", "held",
                                  "cancer", "quite", "quiet", "and", "top", "soap", "stamp", "snap",
                                  "remote", "candle", "concert", "stoned", "hello", "ok", "lol"])  # fmt: skip
def test_real_words_near_a_keyword_are_not_typos(text: str) -> None:
    assert kind(text) is None, text


def test_a_typo_of_start_or_help() -> None:
    assert kind("strat", subscription="unsubscribed") == "opt_in"
    assert kind("halp") == "help"
    assert kind("hepl") == "help"


def test_equally_near_an_opt_in_and_an_opt_out_is_no_guess() -> None:
    assert typo_of("UNSTO") is None or typo_of("UNSTO")[0] == "opt_in"  # type: ignore[index]
    assert typo_of("X") is None and typo_of("ST") is None


@pytest.mark.parametrize(("text", "language"), [("AYUDA", "es"), ("aide", "fr"), ("Aiuto", "it"),
                                                ("ajuda", "pt"), ("HELP", None), ("info", None)])  # fmt: skip
def test_help_in_other_languages_says_which(text: str, language: str | None) -> None:
    decision = classify(text, subscription="subscribed")
    assert decision is not None and decision.kind == "help" and decision.language == language


@pytest.mark.parametrize(
    "text", ["START", "unstop", "resubscribe", "start again", "resubscribe me"]
)
def test_start_equivalents(text: str) -> None:
    assert kind(text, subscription="unsubscribed") == "opt_in"


def test_yes_resubscribes_only_someone_who_opted_out() -> None:
    assert kind("YES", subscription="unsubscribed") == "opt_in"
    assert kind("YES", subscription="pending") is None


def test_yes_after_the_question_confirms_the_opt_out() -> None:
    assert kind("yes", asked=True) == "opt_out"
    assert kind("Yes please", asked=True) == "opt_out"
    assert kind("STOP", asked=True) == "opt_out"
    assert kind("yes", asked=False) is None
    assert kind("no", asked=True) is None


def test_the_provider_already_handled_it() -> None:
    decision = classify("whatever", subscription="subscribed", opt_out_type="stop")
    assert decision is not None and decision.kind == "opt_out" and decision.provider_handled


def test_never_mind_is_not_an_opt_out_cancel_is() -> None:
    # leaving a flow ("never mind") is the flows' cancel pattern; CANCEL is the carriers' opt-out
    assert kind("never mind") is None and kind("nvm") is None and kind("forget it") is None
    assert kind("CANCEL") == "opt_out"
