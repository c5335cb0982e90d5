"""STOP / START / HELP: the decisions that win over everything else on the inbound path (pure).

Step 3 of the message path. `classify(text, ...)` takes values and returns a `Decision` (or
None: the bot may carry on), in this order, cheapest and surest first:

1. the provider already handled it (Twilio Advanced Opt-Out's `OptOutType`);
2. exact keywords (`keywords.py`: the carriers' STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
   OPTOUT, REVOKE; START; HELP; their equivalents in other languages);
3. a one-word typo of a keyword (`typos.py`: "stahp", "stopp", "sotp", "unsubscibe");
4. explicit opt-out wording anywhere in the text (`patterns.py`: "stop texting me");
5. the phrase model (`phrases.py`, trained on `phrases/*.yml`), with precision guards for
   texts that merely contain "stop". Sure: decided. Unsure (a middle band): `confirm_opt_out`,
   the pipeline asks once ("Reply STOP to stop all texts"); a YES or STOP to that resolves it.

A fan who asks to be left alone must never receive another marketing text: the FCC's 2024 rule
lets consent be revoked by any reasonable means. `language.py` is the other pure decision kept
here: which language a text the NLU could not place is written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.compliance import language, patterns, phrases, typos
from bot.compliance.keywords import (
    CARRIER_OPT_OUT,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    exact,
    normalise,
)

__all__ = ["CARRIER_OPT_OUT", "HELP_WORDS", "OPT_IN_WORDS", "OPT_OUT_WORDS", "Decision",
           "asked_to_confirm", "classify", "normalise", "warm_up", "with_question"]  # fmt: skip

Kind = Literal["opt_out", "opt_in", "help", "confirm_opt_out"]

# phrase-model bands (probability of the label); measured in tests/compliance
OPT_OUT_SURE = 0.70  # at or above: unsubscribed
OPT_OUT_ASK = 0.40  # from here up to sure: asked once
GUARDED_ASK = 0.90  # "stop" in another sense ("can't stop smiling"): asked only above this
OTHER_SURE = 0.80  # START / HELP in plain words
ASKED_KEY = "compliance_asked"  # in the dialogue JSON, for one turn: we asked "Reply STOP ...?"


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    keyword: str  # what matched, for the event log (never the whole text)
    provider_handled: bool = False  # Twilio Advanced Opt-Out already answered the fan
    language: str | None = None  # the fan wrote in this language (replies `<name>_<lang>`)
    score: float | None = None  # the phrase model's probability, when it decided


def classify(
    text: str, *, subscription: str, opt_out_type: str | None = None, asked: bool = False
) -> Decision | None:
    """The compliance decision for an inbound text, or None when the bot may carry on.
    `asked`: our last reply asked "Reply STOP to stop all texts?" (a YES now confirms it)."""
    if opt_out_type:
        kind = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}.get(opt_out_type.upper())
        if kind:
            return Decision(kind, opt_out_type.upper(), provider_handled=True)  # type: ignore[arg-type]
    words = normalise(text)
    hit = exact(words, subscription=subscription, asked=asked)
    if hit is not None:
        return Decision(hit[0], words, language=hit[1])  # type: ignore[arg-type]
    if words and " " not in words:
        typo = typos.typo_of(words)
        if typo is not None:
            return Decision(typo[0], f"~{typo[1]}")  # type: ignore[arg-type]
    if patterns.explicit_opt_out(text[: phrases.MAX_CHARS]):
        return Decision("opt_out", "phrase")
    if sum(w.isalpha() and len(w) > 1 for w in words.split()) < 2:
        return None  # one word, a ZIP, a date: the keywords and typos above had their say
    return _from_model(text, subscription)


def _from_model(text: str, subscription: str) -> Decision | None:
    # a long text is read whole and clause by clause: "loved the show, but please stop the texts"
    model = phrases.model()
    probs = model.probabilities(text)
    out, guarded = probs["opt_out"], patterns.guarded(text)
    for clause in patterns.clauses(text):
        p = model.probabilities(clause)["opt_out"]
        if p > out:
            out, guarded = p, patterns.guarded(clause)
    if out >= OPT_OUT_SURE and not guarded:
        return _modelled("opt_out", out, text)
    if out >= (GUARDED_ASK if guarded else OPT_OUT_ASK):
        if subscription == "unsubscribed":
            return None  # nothing to ask someone who already gets nothing
        return _modelled("confirm_opt_out", out, text)
    for kind in ("opt_in", "help"):
        if probs[kind] >= OTHER_SURE:
            return _modelled(kind, probs[kind], text)
    return None


def _modelled(kind: str, score: float, text: str) -> Decision:
    # the language too, so a line with `utter_opt_out_confirmed_es` answers "no quiero más" in it
    return Decision(
        kind,
        "model",
        language=language.identify(text, language.REPLY_PROBABILITY),
        score=round(score, 3),
    )  # type: ignore[arg-type]


def asked_to_confirm(dialogue: dict[str, Any] | None) -> bool:
    """Our last reply asked the fan to confirm an opt-out (lives in the dialogue for one turn)."""
    return bool(dialogue and dialogue.get(ASKED_KEY))


def with_question(dialogue: dict[str, Any] | None, asked: bool) -> dict[str, Any]:
    """The dialogue JSON with the one-turn "we asked" mark set or cleared."""
    rest = {k: v for k, v in (dialogue or {}).items() if k != ASKED_KEY}
    return {**rest, ASKED_KEY: True} if asked else rest


def warm_up() -> None:
    """Build the phrase model and load the language model now (start-up), not on a fan's text."""
    phrases.model()
    language.warm_up()
