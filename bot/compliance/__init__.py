"""STOP / START / HELP: the decisions that win over everything else on the inbound path (pure).

Step 3 of the message path. `classify(text, ...)` takes values and returns a `Decision` (or
None: the bot may carry on), in this order, cheapest and surest first:

1. the provider already handled it (Twilio Advanced Opt-Out's `OptOutType`);
2. exact keywords (`keywords.py`: the carriers' STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
   OPTOUT, REVOKE; START; HELP; their equivalents in other languages);
3. a one-word typo of a keyword (`typos.py`: "stahp", "stopp", "sotp", "unsubscibe");
4. explicit opt-out wording anywhere in the text (`patterns.py`: "stop texting me");
5. the phrase model (`phrases.py`; the line's own, built with its NLU examples by `line.py`),
   with precision guards for texts that merely contain "stop" and a subject check
   (`subject.py`): a decision by model must be about the texts. Sure: decided. Unsure (a
   middle band) and about the texts: `confirm_opt_out`, the pipeline asks once ("Reply STOP to
   stop all texts"); a YES or STOP to that resolves it. HELP and START by model only for help
   with, or joining, the texts. The bands and the model itself are a line's setting
   (`policy.py`); the keywords are not.

A fan who asks to be left alone must never receive another marketing text: the FCC's 2024 rule
lets consent be revoked by any reasonable means. `language.py` is the other pure decision kept
here: which language a text the NLU could not place is written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.compliance import language, patterns, phrases, subject, typos
from bot.compliance.keywords import (
    CARRIER_OPT_OUT,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    exact,
    normalise,
)
from bot.compliance.phrases import PhraseModel
from bot.compliance.policy import DEFAULT, Policy

__all__ = ["CARRIER_OPT_OUT", "HELP_WORDS", "OPT_IN_WORDS", "OPT_OUT_WORDS", "Decision", "Policy",
           "asked_to_confirm", "classify", "normalise", "warm_up", "with_question"]  # fmt: skip

Kind = Literal["opt_out", "opt_in", "help", "confirm_opt_out"]

# phrase-model bands (probability of the label): the defaults of `Policy`, a line's setting
OPT_OUT_SURE = DEFAULT.opt_out_sure  # at or above: unsubscribed
OPT_OUT_ASK = DEFAULT.opt_out_ask  # from here up to sure: asked once
GUARDED_ASK = 0.90  # "stop" in another sense ("can't stop smiling"): asked only above this
OTHER_SURE = DEFAULT.help_start_sure  # START / HELP in plain words
# a sure opt-out that names nothing of the texts ("please just stop", "no me escriban más" do;
# "i want to be out of whisper mode" does not) must be this sure, whatever the line's bands
UNNAMED_SURE = 0.95
# in another language the model's ordinary-language negatives are thin (the background is
# English), so by model alone an opt-out there must be this sure; explicit wording in the five
# languages (`patterns.py`) decides the rest, and below this the fan is asked once
FOREIGN_SURE = 0.90
WHO_HELP = 0.10  # "who is this", "what is this number": HELP at this (the line may say else)
ASKED_KEY = "compliance_asked"  # in the dialogue JSON, for one turn: we asked "Reply STOP ...?"
# in the dialogue JSON of a fan unsubscribed by their own words (the phrase model or explicit
# wording, not a carrier keyword): their next "yes" answers whatever they were last told, it
# does not re-subscribe them (only START or rejoin wording does)
BY_MODEL_KEY = "opted_out_by_model"


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    keyword: str  # what matched, for the event log (never the whole text)
    provider_handled: bool = False  # Twilio Advanced Opt-Out already answered the fan
    language: str | None = None  # the fan wrote in this language (replies `<name>_<lang>`)
    score: float | None = None  # the phrase model's probability, when it decided


def classify(
    text: str,
    *,
    subscription: str,
    opt_out_type: str | None = None,
    asked: bool = False,
    model: PhraseModel | None = None,
    policy: Policy = DEFAULT,
    yes_rejoins: bool = True,
) -> Decision | None:
    """The compliance decision for an inbound text, or None when the bot may carry on.
    `asked`: our last reply asked "Reply STOP to stop all texts?" (a YES now confirms it).
    `model`: the line's phrase model (None: the shipped one, without any line's examples).
    `yes_rejoins`: a YES re-subscribes an opted-out fan (not after an opt-out by model)."""
    if opt_out_type:
        kind = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}.get(opt_out_type.upper())
        if kind:
            return Decision(kind, opt_out_type.upper(), provider_handled=True)  # type: ignore[arg-type]
    # pure in the text and these values: fans send the same texts again and again, so each
    # model keeps its recent decisions (it dies with the model, as the NLU's parse cache does)
    model = model or phrases.model()
    key = (text, subscription, asked, policy, yes_rejoins)
    decided = model.decisions.get(key, _UNDECIDED)
    if decided is _UNDECIDED:
        decided = _decide(text, subscription, asked, model, policy, yes_rejoins)
        model.decisions.put(key, decided)
    return decided  # type: ignore[return-value]


_UNDECIDED = object()


def _decide(
    text: str, subscription: str, asked: bool, model: PhraseModel, policy: Policy, yes_rejoins: bool
) -> Decision | None:
    words = normalise(text)
    hit = exact(words, subscription=subscription, asked=asked, yes_rejoins=yes_rejoins)
    if hit is not None:
        return Decision(hit[0], words, language=hit[1])  # type: ignore[arg-type]
    if words and " " not in words:
        typo = typos.typo_of(words)
        if typo is not None:
            return Decision(typo[0], f"~{typo[1]}")  # type: ignore[arg-type]
    if patterns.explicit_opt_out(text[: phrases.MAX_CHARS]):  # in its language: the reply's
        return Decision(
            "opt_out", "phrase", language=language.identify(text, language.REPLY_PROBABILITY)
        )
    if not policy.phrase_model or sum(w.isalpha() and len(w) > 1 for w in words.split()) < 2:
        return None  # one word, a ZIP, a date: the keywords and typos above had their say
    return _from_model(text, subscription, model, policy)


def _from_model(
    text: str, subscription: str, model: PhraseModel, policy: Policy
) -> Decision | None:
    if model.is_line_example(text):
        return None  # the line's own example: its fans mean the line's intent by it
    # a long text is read whole and clause by clause: "loved the show, but please stop the texts"
    probs = model.probabilities(text)
    out, guarded = probs["opt_out"], patterns.guarded(text)
    for clause in patterns.clauses(text):
        p = model.probabilities(clause)["opt_out"]
        if p > out:
            out, guarded = p, patterns.guarded(clause)
    if (
        out >= policy.opt_out_sure
        and not guarded
        and not subject.observation(text)  # "i get a lot of texts from you": asked, at most
        and (subject.about_the_texts(text) or out >= UNNAMED_SURE)
        and (out >= FOREIGN_SURE or not _foreign(text))
    ):
        return _modelled("opt_out", out, text)
    if out >= (max(GUARDED_ASK, policy.opt_out_ask) if guarded else policy.opt_out_ask):
        if subscription == "unsubscribed" or not subject.about_the_texts(text):
            return None  # nothing to ask someone who gets nothing, or about something else
        return _modelled("confirm_opt_out", out, text)
    if probs["opt_in"] >= policy.help_start_sure and subject.about_joining(text):
        return _modelled("opt_in", probs["opt_in"], text)
    if probs["help"] >= policy.help_start_sure and (
        subject.asks_who(text) or subject.about_the_texts(text)
    ):
        return _modelled("help", probs["help"], text)
    if (
        subject.asks_who(text)
        and probs["help"] >= WHO_HELP
        and probs["help"] == max(probs[k] for k in ("help", "opt_in", "opt_out"))
    ):  # "who is this": the carriers' HELP in words, unless the line's own examples say else
        return _modelled("help", probs["help"], text)
    return None


def _foreign(text: str) -> bool:
    """Written in another language than the line's (surely enough to pick a reply's)."""
    return language.identify(text, language.REPLY_PROBABILITY) is not None


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


def opted_out_by_model(dialogue: dict[str, Any] | None) -> bool:
    """The fan was unsubscribed by their own words, not a keyword (their next YES is no START)."""
    return bool(dialogue and dialogue.get(BY_MODEL_KEY))


def warm_up() -> None:
    """Load the language model now (start-up), not on a fan's text. The phrase model is the
    line's (`line.load_or_train`), built with its content."""
    language.warm_up()
