"""What a right outcome is, for bench/conversations.py: the held-out sets, labels and verdicts (pure).

The harness sends each text through the real pipeline and turns the turn's events, replies and
the fan's stored state into an `Observed`; `judge` compares it with the item's label and says
whether it was right, a confident wrong answer, a dead end, a false opt-out... `summarise` turns
the verdicts into the figures the benchmark prints. No I/O here beyond reading the YAML sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Location
from bot.flows import read_yaml

DATA = Path(__file__).resolve().parent / "data"

# answer class -> (flows that give it, responses that give it): either seen counts as answered
ANSWERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (frozenset(flows), frozenset(responses))
    for name, flows, responses in [
        ("tour_dates", ["faq_tour_dates", "keyword_tour"], ["utter_tour_dates"]),
        ("tickets", ["faq_tickets"], ["utter_tickets"]),
        ("presale", ["faq_presale", "keyword_presale"], ["utter_presale"]),
        ("merch", ["faq_merch", "keyword_merch"], ["utter_merch"]),
        ("shipping", ["faq_shipping"], ["utter_shipping"]),
        ("album", ["faq_album", "keyword_album"], ["utter_album"]),
        ("fan_club", ["faq_fan_club", "keyword_crew"], ["utter_fan_club"]),
        ("vip", ["faq_vip", "keyword_vip"], ["utter_vip"]),
        ("meet_greet", ["faq_meet_greet"], ["utter_meet_greet"]),
        ("setlist", ["faq_setlist"], ["utter_setlist"]),
        ("charity", ["faq_charity"], ["utter_charity"]),
        ("age_limit", ["faq_age_limit"], ["utter_age_limit"]),
        ("accessibility", ["faq_accessibility"], ["utter_accessibility"]),
        ("capabilities", ["faq_capabilities"], ["utter_capabilities"]),
        # flows that collect: started is the answer (their prompts come again mid-flow)
        ("shows_near_me", ["shows_near_me"], []),
        ("birthday_shoutout", ["birthday_shoutout"], ["utter_birthday_shoutout"]),
        ("profile", ["profile"], []),
        ("presale_code", ["presale_code"], []),
        ("refund", ["refund"], ["utter_refund"]),
        ("greet", ["greet"], ["utter_greet"]),
        ("love_you", ["love_you"], ["utter_love_you"]),
        ("thanks", ["thanks"], ["utter_thanks"]),
        ("goodbye", ["goodbye"], ["utter_goodbye"]),
        ("bot_challenge", ["bot_challenge"], ["utter_bot_challenge"]),
        ("join", ["join"], ["utter_already_subscribed"]),
    ]
}
# Harmless small talk: never a confident wrong answer to a filler, a reaction or an unanswerable
# text (love_you is not here: "💀💀" answered with "we'll pass the love on" is the example).
LIGHT = frozenset({"greet", "thanks", "goodbye", "capabilities"})
HANDING_OFF = frozenset({"refund"})  # an answer that comes with a hand-off: wrong only alone
ANSWER_CLASSES = frozenset(ANSWERS) | {"help"}
SINGLE_CLASSES = ANSWER_CLASSES | {
    "escalate", "opt_out", "not_opt_out", "filler", "reaction", "other_language",
    "out_of_scope", "multi",
}  # fmt: skip
SCENARIO_CLASSES = SINGLE_CLASSES | {"opt_in", "declined", "resubscribe", "reask", "any", "ignored"}
SILENCE_OK = frozenset({"filler", "reaction", "ignored"})  # nothing at all is a right outcome
CANT_HELP = frozenset({"utter_out_of_scope", "utter_cannot_handle"})  # the English can't-help
HAND_OFF_WORDS = ("real person", "a person", "her team", "can't answer", "cannot answer")
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
# Common words of each language that are not English words too (no "a", "no", "die", "do"...)
_STOPWORDS = {
    "es": "el la los las que de en por para hola gracias solo inglés español hablo hablamos "
    "habla puedo una persona equipo te tu más pero sí es y con este esta número escribe "
    "responde del lo al nos aquí ayuda mensajes",
    "fr": "le la les de des et est je vous nous en bonjour merci anglais français parle parlons "
    "une personne équipe pour pas que sur avec ici seulement numéro écrivez aide",
    "it": "il la di che e non per ciao grazie inglese italiano parlo parliamo una persona "
    "squadra solo ti sono con del della qui questo numero scrivi aiuto",
    "pt": "de que não para olá oi obrigado obrigada inglês português falo falamos uma pessoa "
    "equipe só você em da aqui este número escreva ajuda",
    "de": "der das und ist ich nicht hallo danke englisch deutsch spreche sprechen eine wir "
    "sie mit hier nur nummer schreib hilfe",
}
STOPWORDS = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}


@dataclass(frozen=True, slots=True)
class Expect:
    """A label: what a right outcome for one text (or one turn of a scenario) is."""

    expect: str
    also: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()  # multi: each of these answered
    lang: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # scenario turns: contains, profile...

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset((self.expect, *self.also, *self.answers))


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    label: Expect
    where: str  # file:line, for the worst-examples file
    group: str  # fan_texts | opt_out:<lang> | not_opt_out


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    fan: dict[str, Any] | None  # None: a new number (first contact)
    turns: tuple[Item, ...]
    max_pitches: int | None
    where: str


@dataclass(frozen=True, slots=True)
class Observed:
    """One turn as the harness saw it: the events and replies, then the fan's stored state."""

    replies: tuple[str, ...] = ()
    responses: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    escalated: bool = False  # this turn opened (or joined) an escalation
    held: bool = False  # the bot stayed silent because a person has the thread
    compliance: str | None = None  # opt_out | opt_in | help
    intent: str | None = None
    confidence: float = 0.0
    subscription: str = "pending"  # after the turn
    was: str = "pending"  # the subscription before the turn
    profile: dict[str, Any] = field(default_factory=dict)
    status: str = "bot"  # conversation status after the turn: bot | open | snoozed | resolved
    # slots a flow that was already waiting took from this text (set before any flow started)
    slots_taken: tuple[str, ...] = ()

    @property
    def answers(self) -> frozenset[str]:
        got = {
            name
            for name, (flows, responses) in ANSWERS.items()
            if flows & set(self.flows) or responses & set(self.responses)
        }
        if self.compliance == "help":
            got.add("help")
        return frozenset(got)

    @property
    def opted_out(self) -> bool:
        return self.subscription == "unsubscribed" and self.was != "unsubscribed"

    @property
    def with_person(self) -> bool:
        """A person will see this text: it escalated, or the thread is with (or waits for) one."""
        return self.escalated or self.held or self.status not in ("bot", "resolved")

    @property
    def pitches(self) -> int:
        said = sum(r == "utter_ask_opt_in" for r in self.responses)
        return max(said, sum("reply yes" in r.lower() for r in self.replies))

    @property
    def asked_opt_out(self) -> bool:
        """The ask-once reply when unsure ("Reply STOP to stop all texts"): not an opt-out."""
        return any("ask_opt_out" in r for r in self.responses) or any(
            r.lower().startswith("reply stop to stop") for r in self.replies
        )

    @property
    def clarified(self) -> bool:
        """A one-tap disambiguation or a rephrase request (not an answer, not wrong)."""
        names = " ".join(self.responses)
        return any(w in names for w in ("disambig", "clarif", "rephrase")) or any(
            "did you mean" in r.lower() for r in self.replies
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    why: str  # right | wrong_answer | not_answered | partial | missed_escalation | ...
    wrong: bool = False  # a confident answer of the wrong kind
    dead_end: bool = False  # no reply, no person, not an opt-out, silence not allowed
    false_opt_out: bool = False


def in_language(text: str, lang: str) -> bool:
    """Rough: the reply uses three of `lang`'s common words (CJK: any CJK character)."""
    if lang in ("ja", "zh", "ko"):
        return any(ord(ch) > 0x2E80 for ch in text)
    words = {w.lower() for w in _WORDS.findall(text)}
    return len(words & STOPWORDS.get(lang, frozenset())) >= 3  # a bilingual reply counts


# ---- verdicts ---------------------------------------------------------------------------------

ASKED = ANSWER_CLASSES | {"escalate", "multi"}  # a turn that asks something of the line


def swallowed(label: Expect, obs: Observed) -> bool:
    """A question swallowed by a collect step: the turn asked for an answer or a person, and the
    flow that was waiting for a slot took the text as that slot's value instead."""
    return label.expect in ASKED and bool(obs.slots_taken)


def wrong_answer(label: Expect, obs: Observed) -> bool:
    """A confident answer of the wrong kind: an answer the label does not accept.

    Harmless small talk is not wrong beside nothing else, except as the only reply to a text
    that asked for an answer ("when is the tour?" -> "Hey! Nova's team here").
    """
    if label.expect not in SINGLE_CLASSES:  # opt_in, any, reask...: what else is said is free
        return False
    extra = obs.answers - label.accepted
    if obs.with_person:
        extra -= HANDING_OFF
    if extra - LIGHT:
        return True
    asked = label.expect in ANSWER_CLASSES or label.expect == "multi"
    return bool(extra) and asked and not (obs.answers & label.accepted)


def judge(label: Expect, obs: Observed, *, before: Observed | None = None) -> Verdict:
    """The verdict for one turn; `before` is the previous turn of a scenario (for "?")."""
    wrong = wrong_answer(label, obs)
    if obs.opted_out and label.expect != "opt_out":
        return Verdict(False, "false_opt_out", wrong, false_opt_out=True)
    ok, why = _class_verdict(label, obs, before)
    if ok and wrong:
        ok, why = False, "wrong_answer"
    elif not ok and wrong and why != "missed_opt_out":  # a missed opt-out stays that
        why = "wrong_answer"
    if ok:
        ok, why = _checks(label.checks, obs)
    silent = not obs.replies and not obs.with_person and obs.subscription != "unsubscribed"
    dead = silent and label.expect not in SILENCE_OK
    return Verdict(ok, "dead_end" if dead and not wrong else why, wrong, dead)


def _class_verdict(label: Expect, obs: Observed, before: Observed | None) -> tuple[bool, str]:
    e = label.expect
    if e in ANSWER_CLASSES:
        if e in obs.answers:
            return True, "right"
        return False, "handed_off" if obs.with_person else "not_answered"
    if e == "multi":
        got = set(label.answers) & obs.answers
        return len(got) == len(label.answers), "right" if got == set(label.answers) else (
            "partial" if got else "not_answered"
        )
    if e == "escalate":
        return obs.with_person, "right" if obs.with_person else "missed_escalation"
    if e == "opt_out":
        done = obs.subscription == "unsubscribed"
        return done, "right" if done else "missed_opt_out"
    if e in ("filler", "reaction", "not_opt_out"):
        if obs.escalated and "escalate" not in label.also:
            return False, "escalated"
        return True, "right"
    if e == "other_language":
        return _other_language(label, obs)
    if e == "out_of_scope":
        return _out_of_scope(obs)
    return _scenario_verdict(label, obs, before)


def _other_language(label: Expect, obs: Observed) -> tuple[bool, str]:
    if any(in_language(r, label.lang or "") for r in obs.replies):
        return True, "right"
    if obs.answers & label.accepted:
        return True, "right"  # the right answer, in English: not a reply in kind, not wrong
    if set(obs.responses) & CANT_HELP:
        return False, "english_cant_help"
    if obs.with_person:
        return True, "right"  # an honest hand-off
    return False, "not_answered"


def _out_of_scope(obs: Observed) -> tuple[bool, str]:
    honest = set(obs.responses) & CANT_HELP or any(
        w in r.lower() for r in obs.replies for w in HAND_OFF_WORDS
    )
    if obs.with_person or honest:
        return True, "right"
    if obs.clarified:
        return False, "clarified"
    return False, "not_answered" if not obs.replies else "no_hand_off"


def _scenario_verdict(label: Expect, obs: Observed, before: Observed | None) -> tuple[bool, str]:
    e, subscribed = label.expect, obs.subscription == "subscribed"
    if e in ("opt_in", "resubscribe"):
        ok = subscribed and not obs.escalated
        return ok, "right" if ok else ("escalated" if obs.escalated else "not_subscribed")
    if e == "declined":
        ok = not subscribed and bool(obs.replies) and not obs.escalated
        return ok, "right" if ok else "not_declined"
    if e == "ignored":
        return (not obs.replies), "right" if not obs.replies else "replied_after_opt_out"
    if e == "reask":
        ok = bool(obs.replies) and not obs.escalated and _repeats(before, obs)
        return ok, "right" if ok else ("escalated" if obs.escalated else "not_reasked")
    if e == "any":
        ok = bool(obs.replies) and not obs.escalated
        return ok, "right" if ok else ("escalated" if obs.escalated else "no_reply")
    raise ValueError(f"unknown class {e!r}")


def _repeats(before: Observed | None, obs: Observed) -> bool:
    """The bot asked its last question again: the same response, or mostly the same words."""
    if before is None or not before.replies:
        return False
    asked = {r for r in before.responses if r}
    if asked & set(r for r in obs.responses if r):
        return True
    last = set(_WORDS.findall(before.replies[-1].lower()))
    return any(len(last & set(_WORDS.findall(r.lower()))) >= 0.5 * len(last) for r in obs.replies)


def _checks(checks: dict[str, Any], obs: Observed) -> tuple[bool, str]:
    text = " ".join(obs.replies).lower()
    for want in _listed(checks.get("contains")):
        if want.lower() not in text:
            return False, f"reply lacks {want!r}"
    for unwanted in _listed(checks.get("not_contains")):
        if unwanted.lower() in text:
            return False, f"reply has {unwanted!r}"
    for key, value in (checks.get("profile") or {}).items():
        if str(obs.profile.get(key)) != str(value):
            return False, f"profile {key}={obs.profile.get(key)!r}, expected {value!r}"
    for key in _listed(checks.get("no_profile")):
        if obs.profile.get(key) not in (None, ""):
            return False, f"profile {key} set to {obs.profile.get(key)!r}"
    if checks.get("subscription") and obs.subscription != checks["subscription"]:
        return False, f"subscription {obs.subscription}"
    if checks.get("pitch") is False and obs.pitches:
        return False, "opt-in pitch repeated"
    return True, "right"


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# ---- the sets ---------------------------------------------------------------------------------


def load_texts(path: Path = DATA / "fan_texts.yml") -> list[Item]:
    data = read_yaml(path) or {}
    raw = data.get("texts") or []
    return [_item(x, path, line, "fan_texts", SINGLE_CLASSES) for x, line in _lined(raw)]


def load_opt_outs(path: Path = DATA / "opt_out_phrases.yml") -> tuple[list[Item], list[Item]]:
    """(plain-language opt-out requests, tricky texts that are not opt-outs)."""
    data = read_yaml(path) or {}
    requests = [
        Item(str(text), Expect("opt_out"), f"{path.name}:{line}", f"opt_out:{lang}")
        for lang, texts in (data.get("opt_out") or {}).items()
        for text, line in _lined(texts)
    ]
    anything = tuple(sorted(ANSWER_CLASSES)) + ("escalate",)  # only the opt-out is judged here
    tricky = [
        Item(str(text), Expect("not_opt_out", anything), f"{path.name}:{line}", "not_opt_out")
        for text, line in _lined(data.get("not_opt_out") or [])
    ]
    return requests, tricky


def load_scenarios(path: Path = DATA / "scenarios.yml") -> list[Scenario]:
    data = read_yaml(path) or {}
    out = []
    for raw, line in _lined(data.get("scenarios") or []):
        if not isinstance(raw, dict) or not raw.get("name") or not raw.get("turns"):
            raise ConfigError("a scenario needs a name and turns", Location(str(path), line))
        turns = tuple(
            _item(t, path, tl, str(raw["name"]), SCENARIO_CLASSES) for t, tl in _lined(raw["turns"])
        )
        fan = raw.get("fan")
        out.append(
            Scenario(str(raw["name"]), None if fan == "new" else dict(fan or {}), turns,
                     raw.get("max_pitches"), f"{path.name}:{line}")
        )  # fmt: skip
    return out


CHECK_KEYS = {"contains", "not_contains", "profile", "no_profile", "subscription", "pitch"}


def _item(raw: Any, path: Path, line: int | None, group: str, classes: frozenset[str]) -> Item:
    where = Location(str(path), line)
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise ConfigError("each item needs a `text`", where)
    expect = raw.get("expect")
    also = tuple(raw.get("also") or ())
    answers = tuple(raw.get("answers") or ())
    if expect not in classes:
        raise ConfigError(f"unknown expect {expect!r}", where)
    if unknown := (set(also) | set(answers)) - SINGLE_CLASSES:
        raise ConfigError(f"unknown classes {sorted(unknown)} in also/answers", where)
    if (expect == "multi") != bool(answers) or set(answers) - ANSWER_CLASSES:
        raise ConfigError(
            "`answers` (answer classes) goes with expect: multi, and only there", where
        )
    if expect == "other_language" and not raw.get("lang"):
        raise ConfigError("expect: other_language needs `lang`", where)
    if unknown := set(raw) - {"text", "expect", "also", "answers", "lang"} - CHECK_KEYS:
        raise ConfigError(f"unknown keys {sorted(unknown)}", where)
    checks = {k: raw[k] for k in CHECK_KEYS if k in raw}
    label = Expect(str(expect), also, answers, raw.get("lang"), checks)
    return Item(raw["text"], label, f"{path.name}:{line}", group)


def _lined(seq: Any) -> list[tuple[Any, int | None]]:
    lines = getattr(seq, "item_lines", None) or [None] * len(seq)
    return list(zip(seq, lines, strict=True))


# ---- figures ----------------------------------------------------------------------------------

Result = tuple[Item, Observed, Verdict]


def _rate(hits: int, n: int) -> float | None:
    return round(100.0 * hits / n, 1) if n else None


def summarise(texts: list[Result], requests: list[Result], tricky: list[Result]) -> dict[str, Any]:
    """The headline figures of one run (a pipeline, with fans of one kind)."""
    answerable = [r for r in texts if r[0].label.expect in ANSWER_CLASSES | {"multi"}]
    must_escalate = [r for r in texts if r[0].label.expect == "escalate"]
    light = [r for r in texts if r[0].label.expect in ("filler", "reaction")
             and "escalate" not in r[0].label.also]  # fmt: skip
    not_opt = [r for r in texts + tricky if r[0].label.expect != "opt_out"]
    everything = texts + requests + tricky
    return {
        "automation": _rate(sum(v.ok for _, _, v in answerable), len(answerable)),
        "wrong_answers": _rate(sum(v.wrong for _, _, v in texts), len(texts)),
        "escalation_recall": _rate(sum(o.with_person for _, o, _ in must_escalate), len(must_escalate)),
        "opt_out_recall": _rate(sum(v.ok for _, _, v in requests), len(requests)),
        "false_opt_outs": _rate(sum(v.false_opt_out for _, _, v in tricky), len(tricky)),
        "false_opt_outs_all": _rate(sum(v.false_opt_out for _, _, v in not_opt), len(not_opt)),
        "opt_out_recall_or_asked": _rate(
            sum(v.ok or o.asked_opt_out for _, o, v in requests), len(requests)
        ),
        "opt_out_asked_wrongly": sum(o.asked_opt_out for _, o, _ in not_opt),
        "filler_escalations": sum(o.escalated for _, o, _ in light),
        "fillers": len(light),
        "dead_ends": sum(v.dead_end for _, _, v in everything),
        "texts": len(texts), "requests": len(requests), "tricky": len(tricky),
        "right_overall": _rate(sum(v.ok for _, _, v in texts), len(texts)),
    }  # fmt: skip


def by_class(results: list[Result], key: Any = None) -> dict[str, dict[str, int]]:
    """Per class (or per `key(item)`): n, right, wrong, escalated, silent, and the top reasons."""
    table: dict[str, dict[str, Any]] = {}
    for item, obs, v in results:
        name = key(item) if key else item.label.expect
        row = table.setdefault(name, {"n": 0, "right": 0, "wrong": 0, "escalated": 0,
                                      "silent": 0, "why": {}})  # fmt: skip
        row["n"] += 1
        row["right"] += v.ok
        row["wrong"] += v.wrong
        row["escalated"] += obs.escalated
        row["silent"] += not obs.replies
        if not v.ok:
            row["why"][v.why] = row["why"].get(v.why, 0) + 1
    return dict(sorted(table.items()))


SEVERITY = ["false_opt_out", "wrong_answer", "missed_opt_out", "missed_escalation", "dead_end",
            "escalated", "english_cant_help"]  # fmt: skip


def worst(results: list[Result], limit: int = 60) -> list[dict[str, Any]]:
    """The failures, most harmful first, each with what the bot did."""
    failed = [r for r in results if not r[2].ok]
    rank = {why: i for i, why in enumerate(SEVERITY)}
    failed.sort(key=lambda r: (rank.get(r[2].why, len(SEVERITY)), r[0].where))
    return [describe(item, obs, v) for item, obs, v in failed[:limit]]


def describe(item: Item, obs: Observed, v: Verdict) -> dict[str, Any]:
    return {
        "text": item.text, "where": item.where, "expect": item.label.expect,
        "accepted": sorted(item.label.accepted), "verdict": v.why,
        "intent": obs.intent, "confidence": round(obs.confidence, 3),
        "answers": sorted(obs.answers), "escalated": obs.escalated,
        "subscription": obs.subscription, "responses": list(obs.responses),
        "replies": [r[:160] for r in obs.replies],
    }  # fmt: skip
