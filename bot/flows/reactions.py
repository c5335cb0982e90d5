"""Reactions: texts made only of emoji, symbols or filler words, and what kind each one is.

Step 7 of the message path: the flow engine asks `Reactions.classify(text)` before it looks at
the NLU's guess, and a reaction starts `pattern_reaction` (a light reply or nothing, never an
escalation). The map is data: `bot/flows/default_reactions.yml`, changed per project by its own
`reactions.yml`. Pure apart from `load_reactions`, which reads those files.

    table = load_reactions(project_dir / "reactions.yml")   # package default + project override
    table.classify("😂😂")   -> Reaction(kind="laugh", reply="utter_reaction_laugh")
    table.classify("🦄")     -> Reaction(kind="unknown", reply="utter_reaction_unknown")
    table.classify("ok")     -> a Reaction when some kind lists the word "ok", else None
    table.classify("tour?")  -> None: the text has words that are not reactions
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.errors import ConfigError, Location

DEFAULT_FILE = Path(__file__).parent / "default_reactions.yml"
UNKNOWN = "unknown"
# Characters that decorate an emoji without changing it: variation selectors, the zero-width
# joiner, skin tones, the keycap mark. They are skipped when a text is read.
_DECORATION = {"\ufe0e", "\ufe0f", "\u200d", "\u20e3"} | {chr(c) for c in range(0x1F3FB, 0x1F400)}
_SYMBOL_CATEGORIES = {"So", "Sk", "Sm", "Sc", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Cf"}
MAX_REACTION_CHARS = 40  # longer texts are messages, whatever they are made of
SEEN_KEPT = 2048  # texts whose reaction (or none) a map remembers


@dataclass(frozen=True, slots=True)
class Reaction:
    kind: str  # love | laugh | sad | ack | ... | unknown (the map's kinds)
    reply: str | None  # the response to say, or None: stay silent


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    reply: str | None
    emoji: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    reply_given: bool = True  # False: the file left `reply` out (a project keeps the package's)


@dataclass(frozen=True, slots=True)
class Reactions:
    """The map from symbols and words to kinds; `classify` is pure and fast."""

    kinds: Mapping[str, Kind] = field(default_factory=lambda: MappingProxyType({}))
    symbols: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    words: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # the longest symbol, in characters: how far `read` looks ahead (worked out once, not per text)
    longest: int = field(init=False, repr=False, compare=False)
    # recent texts' reactions (`classify` is pure; fans repeat "lol", "thanks", "❤️")
    _seen: dict[str, Reaction | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "longest", max((len(s) for s in self.symbols), default=1))

    @classmethod
    def of(cls, kinds: list[Kind]) -> Reactions:
        symbols: dict[str, str] = {}
        words: dict[str, str] = {}
        for kind in kinds:  # later kinds win: a project's entries override the package's
            symbols.update({_strip(e): kind.name for e in kind.emoji if _strip(e)})
            words.update({canonical(w): kind.name for w in kind.words})
        by_name = {k.name: k for k in kinds}
        by_name.setdefault(UNKNOWN, Kind(UNKNOWN, None))
        return cls(MappingProxyType(by_name), MappingProxyType(symbols), MappingProxyType(words))

    def missing_replies(self, responses: set[str]) -> list[ConfigError]:
        """Warnings for replies no response defines (those kinds say utter_reaction_unknown)."""
        return [
            ConfigError(
                f"reaction kind {k.name!r}: unknown response {k.reply!r}; "
                "utter_reaction_unknown is said instead",
                Location("reactions.yml", None, f"reactions.{k.name}.reply"),
                warning=True,
            )
            for k in self.kinds.values()
            if k.reply is not None and k.reply not in responses
        ]

    def classify(self, text: str) -> Reaction | None:
        """The reaction a text is, or None when it carries words the map does not know."""
        if text in self._seen:
            return self._seen[text]
        if len(text) > 2 * MAX_REACTION_CHARS:  # a message: read no further (not kept)
            return self._classify(text)
        if len(self._seen) >= SEEN_KEPT:
            self._seen.clear()
        reaction = self._seen[text] = self._classify(text)
        return reaction

    def _classify(self, text: str) -> Reaction | None:
        counts = self.read(text)
        if counts is None:
            return None
        known = Counter({k: n for k, n in counts.items() if k != UNKNOWN})
        name = known.most_common(1)[0][0] if known else UNKNOWN
        return Reaction(name, self.kinds[name].reply if name in self.kinds else None)

    def read(self, text: str) -> Counter[str] | None:
        """Kinds of the text's parts (`unknown` for unlisted symbols); None if it has words."""
        text = text.strip()
        if not text or len(text) > MAX_REACTION_CHARS:
            return None
        counts: Counter[str] = Counter()
        i = 0
        longest = self.longest
        while i < len(text):
            ch = text[i]
            if ch.isspace() or ch in _DECORATION:
                i += 1
                continue
            found = self._symbol_at(text, i, longest)
            if found:
                counts[found[1]] += 1
                i += found[0]
            elif ch.isalnum():
                end = i
                while end < len(text) and (
                    text[end].isalnum() or text[end] == "'" or _inner_hyphen(text, end)
                ):
                    end += 1
                kind = self.words.get(canonical(text[i:end]))
                if kind is None:
                    return None
                counts[kind] += 1
                i = end
            elif unicodedata.category(ch) in _SYMBOL_CATEGORIES:
                counts[UNKNOWN] += 1
                i += 1
            else:
                return None
        return counts or None

    def _symbol_at(self, text: str, i: int, longest: int) -> tuple[int, str] | None:
        for size in range(min(longest, len(text) - i), 0, -1):
            kind = self.symbols.get(text[i : i + size])
            if kind is not None:
                return size, kind
        return None


_LAUGH = re.compile(r"a?(?:h+a+)+h*|(?:h+e+)+h*|(?:lo)+l+|l+m+f*a+o+")


def _inner_hyphen(text: str, i: int) -> bool:
    """A hyphen inside a word ("pre-saved"), not a dash between words or symbols."""
    return (
        text[i] == "-" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
    )


def canonical(word: str) -> str:
    """A filler word as the map lists it: "OKKK" -> "ok", "yesss" -> "yes", "hahahah" -> "haha",
    "pre-saved" -> "presaved"."""
    word = word.lower().replace("-", "")
    if _LAUGH.fullmatch(word):
        return "haha" if "a" in word and "h" in word else "hehe" if "e" in word else "lol"
    return re.sub(r"(.)\1+", r"\1", word)


def _strip(symbol: str) -> str:
    return "".join(c for c in symbol if c not in _DECORATION and not c.isspace())


@lru_cache(maxsize=1)
def default_reactions() -> Reactions:
    """The package's map alone (engines built without a project's reactions.yml)."""
    return load_reactions()


def load_reactions(project_file: Path | None = None) -> Reactions:
    """The package's map, with the project's `reactions.yml` (when it exists) over it: a kind
    of a known name keeps the package's symbols and words and adds its own (its `reply`, when
    given, replaces the package's); a new name is a new kind."""
    package = {k.name: k for k in _read(DEFAULT_FILE)}
    project = _read(Path(project_file)) if project_file and Path(project_file).is_file() else []
    names = {k.name for k in project}
    # the project's kinds last: a symbol or word it lists belongs to its kind
    kinds = [k for name, k in package.items() if name not in names]
    kinds += [_merge(package[k.name], k) if k.name in package else k for k in project]
    return Reactions.of(kinds)


def _merge(package: Kind, project: Kind) -> Kind:
    """A project kind of a package's name: its `reply` replaces, its lists add."""
    reply = project.reply if project.reply_given else package.reply
    return Kind(package.name, reply, package.emoji + project.emoji, package.words + project.words)


def _read(path: Path) -> list[Kind]:
    from bot.flows.loader import read_yaml

    data = read_yaml(path) or {}
    where = Location(str(path), getattr(data, "line", None), "reactions")
    if not isinstance(data, dict) or not isinstance(data.get("reactions"), dict):
        raise ConfigError("expected `reactions:` mapping kinds to {reply, emoji, words}", where)
    unknown_top = set(data) - {"version", "reactions"}
    if unknown_top:
        raise ConfigError(f"unknown top-level key {sorted(unknown_top)[0]!r}", where)
    lines = getattr(data["reactions"], "key_lines", {})
    return [
        _kind(str(name), spec, Location(str(path), lines.get(name), f"reactions.{name}"))
        for name, spec in data["reactions"].items()
    ]


def _kind(name: str, spec: Any, where: Location) -> Kind:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigError("a reaction kind is a mapping with reply, emoji, words", where)
    extra = set(spec) - {"reply", "emoji", "words"}
    if extra:
        raise ConfigError(f"unknown key {sorted(extra)[0]!r} (use reply, emoji, words)", where)
    reply = spec.get("reply")
    if reply is not None and not (isinstance(reply, str) and reply.startswith("utter_")):
        raise ConfigError("`reply` must be a response name (utter_...) or null", where)
    lists = {}
    for key in ("emoji", "words"):
        value = spec.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise ConfigError(f"`{key}` must be a list of strings", where)
        lists[key] = tuple(str(v) for v in value)
    return Kind(name, reply, lists["emoji"], lists["words"], "reply" in spec)
