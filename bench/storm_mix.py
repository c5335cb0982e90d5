"""The reply-storm mix for bench/reply_storm.py: load it, draw fans' texts from it, judge the bot.

Pure apart from reading bench/data/reply_storm.yml. A `Phrase` is one text with its true
category (a known FAQ class, small talk, an opt-out, or one of the topics the demo cannot answer)
and the categories whose answer is right for it; `draw` picks texts by the mix's weights and
types them as phones do; `judge` says what the bot's turn did for the fan.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import conversation_judge as cj
from bot.errors import ConfigError, Location
from bot.flows import read_yaml

DATA = Path(__file__).resolve().parent / "data" / "reply_storm.yml"
KINDS = ("known", "small_talk", "opt_out", "topics")
SMALL_TALK = frozenset({"filler", "reaction", "love_you", "thanks", "greet", "goodbye"})
SMALL_TALK_CATEGORY = "small_talk"
OPT_OUT = "opt_out"
_ENDINGS = [" ??", "?", " pls", " 😭", " asap", " !!", " omg", "??", " 🙏", " lol"]
_OPENINGS = ["omg ", "hey ", "wait ", "ok ", "so ", "hi! "]


@dataclass(frozen=True, slots=True)
class Phrase:
    """One text of the mix. `category`: the FAQ class, `small_talk`, `opt_out` or a topic name;
    `accepted`: the categories whose answer is right for it (its own first)."""

    text: str
    kind: str  # known | small_talk | opt_out | topics
    category: str
    accepted: tuple[str, ...]
    expect: cj.Expect
    held_out: bool = False


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    weight: float
    intent: str
    answer: str
    wave1: tuple[Phrase, ...]
    held_out: tuple[Phrase, ...]


@dataclass(frozen=True, slots=True)
class Mix:
    broadcast: str
    weights: dict[str, float]
    known: tuple[Phrase, ...]
    small_talk: tuple[Phrase, ...]
    opt_out: tuple[Phrase, ...]
    topics: tuple[Topic, ...]
    small_talk_answer: str

    @property
    def topic_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.topics)

    def topic(self, name: str) -> Topic:
        return next(t for t in self.topics if t.name == name)

    def phrases(self) -> list[Phrase]:
        every = [*self.known, *self.small_talk, *self.opt_out]
        return every + [p for t in self.topics for p in (*t.wave1, *t.held_out)]


# ---- loading ----------------------------------------------------------------------------------


def load_mix(path: Path = DATA) -> Mix:
    data = read_yaml(path) or {}
    where = Location(str(path))
    weights = {k: float(v) for k, v in (data.get("weights") or {}).items()}
    if set(weights) != set(KINDS) or abs(sum(weights.values()) - 1.0) > 1e-6:
        raise ConfigError(f"`weights` must give {', '.join(KINDS)}, summing to 1", where)
    known = tuple(_labelled(x, line, path, "known") for x, line in _lined(data.get("known")))
    talk = tuple(
        _labelled(x, line, path, "small_talk") for x, line in _lined(data.get("small_talk"))
    )
    opt_out = tuple(
        Phrase(str(x), "opt_out", OPT_OUT, (OPT_OUT,), cj.Expect("opt_out"))
        for x, _ in _lined(data.get("opt_out"))
    )
    raw_topics = _lined(data.get("topics"))
    names = {t.get("name") for t, _ in raw_topics if isinstance(t, dict)}
    topics = tuple(_topic(t, line, path, names) for t, line in raw_topics)
    if len(topics) < 5 or abs(sum(t.weight for t in topics) - 1.0) > 1e-6:
        raise ConfigError("at least five `topics`, their weights summing to 1", where)
    if not (known and talk and opt_out):
        raise ConfigError("`known`, `small_talk` and `opt_out` must not be empty", where)
    return Mix(str(data.get("broadcast") or ""), weights, known, talk, opt_out, topics,
               str(data.get("small_talk_answer") or ""))  # fmt: skip


def _labelled(raw: Any, line: int | None, path: Path, kind: str) -> Phrase:
    where = Location(str(path), line)
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise ConfigError("each item needs a `text`", where)
    expect, also = raw.get("expect"), tuple(raw.get("also") or ())
    classes = SMALL_TALK if kind == "small_talk" else cj.ANSWER_CLASSES
    if expect not in classes or set(also) - cj.SINGLE_CLASSES:
        raise ConfigError(f"unknown expect {expect!r} or `also` {list(also)}", where)
    category = SMALL_TALK_CATEGORY if kind == "small_talk" else str(expect)
    accepted = (category,) if kind == "small_talk" else (category, *also)
    return Phrase(raw["text"], kind, category, accepted, cj.Expect(str(expect), also))


def _topic(raw: Any, line: int | None, path: Path, names: set[Any]) -> Topic:
    where = Location(str(path), line)
    if not isinstance(raw, dict) or not all(raw.get(k) for k in ("name", "intent", "answer")):
        raise ConfigError("a topic needs `name`, `intent`, `answer`, `wave1` and `held_out`", where)
    name = str(raw["name"])

    def phrase(x: Any, held: bool) -> Phrase:
        text, also = (x.get("text"), tuple(x.get("also") or ())) if isinstance(x, dict) else (x, ())
        if not isinstance(text, str) or set(also) - names:
            raise ConfigError(f"topic {name}: a phrasing needs text; `also` names topics", where)
        return Phrase(text, "topics", name, (name, *also), cj.Expect("escalate"), held)

    wave1 = tuple(phrase(x, False) for x in raw.get("wave1") or ())
    held = tuple(phrase(x, True) for x in raw.get("held_out") or ())
    if len(wave1) + len(held) < 25 or len(held) < 5:
        raise ConfigError(f"topic {name}: at least 25 phrasings, 5 of them held out", where)
    return Topic(name, float(raw.get("weight") or 0), str(raw["intent"]), str(raw["answer"]),
                 wave1, held)  # fmt: skip


def _lined(seq: Any) -> list[tuple[Any, int | None]]:
    seq = seq or []
    lines = getattr(seq, "item_lines", None) or [None] * len(seq)
    return list(zip(seq, lines, strict=True))


# ---- drawing ----------------------------------------------------------------------------------


def draw(mix: Mix, rng: random.Random, n: int, *, wave: int) -> list[Phrase]:
    """`n` fans' texts: a kind by the mix's weights, a phrasing within it, typed as phones do.
    Wave 1 takes topics' `wave1` phrasings; wave 2 only their held-out ones."""
    kinds = list(KINDS)
    kind_weights = [mix.weights[k] for k in kinds]
    out = []
    for kind in rng.choices(kinds, kind_weights, k=n):
        if kind == "topics":
            topic = rng.choices(mix.topics, [t.weight for t in mix.topics])[0]
            pool = topic.wave1 if wave == 1 else topic.held_out
        else:
            pool = getattr(mix, kind)
        p = rng.choice(pool)
        out.append(Phrase(as_texted(p.text, rng, kind), *_rest(p)))
    return out


def _rest(p: Phrase) -> tuple[Any, ...]:
    return p.kind, p.category, p.accepted, p.expect, p.held_out


def as_texted(text: str, rng: random.Random, kind: str) -> str:
    """The phrasing as one fan types it: case, a dropped '?', a swapped letter, a tag-on.
    Opt-outs keep their words (only the case changes): a misspelt STOP measures nothing here."""
    r = rng.random
    if r() < 0.35:
        text = text.lower()
    elif r() < 0.15:
        text = text.upper()
    if kind == "opt_out":
        return text
    if r() < 0.3:
        text = text.rstrip("?!. ") or text
    if r() < 0.15:
        text = _typo(text, rng)
    if kind in ("known", "topics"):
        if r() < 0.25:
            text += rng.choice(_ENDINGS)
        if r() < 0.1:
            text = rng.choice(_OPENINGS) + text
    return text


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


# ---- judging the bot's turn -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotVerdict:
    right: bool  # the bot itself gave a right answer (or honoured the opt-out)
    wrong: bool  # a confident answer of the wrong kind
    with_person: bool  # the text reached a person (escalated or held)


def judge(p: Phrase, obs: cj.Observed, answers: dict[str, str]) -> BotVerdict:
    """`answers`: each topic's answer as the bot would send it once taught (category -> text)."""
    replies = " ".join(obs.replies)
    if p.kind == "opt_out":
        return BotVerdict(obs.subscription == "unsubscribed", False, obs.with_person)
    taught = {c for c, a in answers.items() if a and a in replies}
    if p.kind == "topics":
        right = bool(taught & set(p.accepted))
        wrong = bool(taught - set(p.accepted)) or (not right and cj.wrong_answer(p.expect, obs))
        return BotVerdict(right, wrong, obs.with_person)
    v = cj.judge(p.expect, obs)  # an FAQ answered and also handed over is still answered
    right = v.ok and not taught
    return BotVerdict(right, v.wrong or v.false_opt_out or bool(taught), obs.with_person)
