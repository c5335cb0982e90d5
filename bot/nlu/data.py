"""Rasa-format NLU training data (`data/*.yml`, `version: "3.1"`) -> one validated `TrainingData`.

Content time: `fanline validate` and `fanline train` call `load_training_data`; the hot path only
sees the trained model. Every error names file, line and key (`bot.errors.ConfigError`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, Location
from bot.messages import Entity
from bot.nlu import yamlnodes as yn
from bot.nlu.markup import MarkupError, has_unclosed_markup, parse_markup

SUPPORTED_VERSIONS = {"2.0", "3.0", "3.1"}
OUT_OF_SCOPE = "out_of_scope"
# Bumped when the same data means something else to training (2: regexes and lookups are
# entities only when annotated; out_of_scope/* is out_of_scope): old models are retrained.
DATA_SEMANTICS = 2
_ITEM_KINDS = ("intent", "synonym", "regex", "lookup")
_ITEM_KEYS = {"examples", "metadata"}
_IGNORED_TOP = {"version", "stories", "rules", "nlu", "responses", "metadata"}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str  # full name: "greet", or "faq/ask_tour" for a retrieval intent
    entities: tuple[Entity, ...] = ()
    location: Location | None = None
    metadata: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RegexPattern:
    name: str
    pattern: str
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class TrainingData:
    examples: tuple[Example, ...] = ()
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-cased variant -> value
    regexes: tuple[RegexPattern, ...] = ()
    lookups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    responses: dict[str, Any] = field(default_factory=dict)  # utter_faq/ask_x -> variations
    warnings: tuple[ConfigError, ...] = ()

    @property
    def intents(self) -> set[str]:
        """Intent names as flows see them: a retrieval intent `faq/ask_x` counts as `faq`."""
        return {base_intent(e.intent) for e in self.examples}

    @property
    def retrieval_intents(self) -> set[str]:
        return {e.intent for e in self.examples if "/" in e.intent}

    @property
    def entities(self) -> set[str]:
        """Annotated entities. As in Rasa, a regex or lookup table is no entity of its own: it
        helps the annotated entity of its name (features, candidates) and is a feature else."""
        return {ent.entity for e in self.examples for ent in e.entities}

    @property
    def unused_patterns(self) -> set[str]:
        """Regex / lookup names that match no annotated entity: features only."""
        return ({r.name for r in self.regexes} | set(self.lookups)) - self.entities

    @property
    def fingerprint(self) -> str:
        """Stable hash of everything that changes a trained model (not of file positions)."""
        payload = {
            "semantics": DATA_SEMANTICS,
            "examples": sorted(
                (e.text, e.intent, [_entity_key(x) for x in e.entities]) for e in self.examples
            ),
            "synonyms": sorted(self.synonyms.items()),
            "regexes": sorted((r.name, r.pattern) for r in self.regexes),
            "lookups": sorted((k, sorted(v)) for k, v in self.lookups.items()),
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def base_intent(intent: str) -> str:
    return intent.split("/", 1)[0]


def _entity_key(e: Entity) -> tuple[Any, ...]:
    return (e.entity, str(e.value), e.start, e.end, e.role, e.group)


def load_training_data(paths: list[Path]) -> TrainingData:
    """Read every NLU file under `paths` (files or directories, recursively `*.yml`/`*.yaml`)."""
    acc = _Accumulator()
    for path in _files(paths):
        _load_file(path, acc)
    return acc.build()


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"})
        elif path.exists():
            found.append(path)
        else:
            raise ConfigError("training data path does not exist", Location(str(path)))
    return found


class _Accumulator:
    """Collects items across files; checks that need all files (duplicates) run in build()."""

    def __init__(self) -> None:
        self.examples: dict[tuple[str, str], Example] = {}
        self.synonyms: dict[str, str] = {}
        self.regexes: list[RegexPattern] = []
        self.lookups: dict[str, list[str]] = {}
        self.responses: dict[str, Any] = {}
        self.warnings: list[ConfigError] = []

    def add_example(self, example: Example) -> None:
        self.examples.setdefault((example.text.strip().lower(), example.intent), example)
        for ent in example.entities:
            surface = example.text[ent.start : ent.end]
            if isinstance(ent.value, str) and ent.value != surface:
                self.synonyms[surface.lower()] = ent.value

    def build(self) -> TrainingData:
        seen: dict[str, Example] = {}
        for (text, _), example in self.examples.items():
            other = seen.setdefault(text, example)
            if other is not example:
                self.warnings.append(
                    ConfigError(
                        f"example {example.text!r} is listed under intents {other.intent!r} "
                        f"({other.location}) and {example.intent!r}",
                        example.location,
                        warning=True,
                    )
                )
        return TrainingData(
            examples=tuple(self.examples.values()),
            synonyms=dict(self.synonyms),
            regexes=tuple(self.regexes),
            lookups={k: tuple(v) for k, v in self.lookups.items()},
            responses=dict(self.responses),
            warnings=tuple(self.warnings),
        )


def _load_file(path: Path, acc: _Accumulator) -> None:
    root = yn.compose(path)
    if root is None:
        return
    root = yn.expect_mapping(path, root, "a training data file")
    top = {key: (knode, vnode) for key, knode, vnode in yn.items(root)}
    if "nlu" not in top and "responses" not in top:
        return  # stories, rules, flows: not NLU data
    if "version" in top:
        version = str(yn.value(top["version"][1]))
        if version not in SUPPORTED_VERSIONS:
            raise ConfigError(
                f'unsupported version "{version}"; use version: "3.1"',
                yn.where(path, top["version"][1], "version"),
            )
    if "nlu" in top:
        seq = yn.expect_sequence(path, top["nlu"][1], "nlu", "nlu")
        for item in seq.value:
            _load_item(path, item, acc)
    if "responses" in top:
        _load_responses(path, top["responses"][1], acc)


def _load_item(path: Path, node: yaml.Node, acc: _Accumulator) -> None:
    node = yn.expect_mapping(path, node, "each nlu item")
    entries = {key: (knode, vnode) for key, knode, vnode in yn.items(node)}
    kinds = [k for k in _ITEM_KINDS if k in entries]
    if len(kinds) != 1:
        raise ConfigError(
            f"each nlu item needs exactly one of {', '.join(_ITEM_KINDS)}", yn.where(path, node)
        )
    kind = kinds[0]
    for key, (knode, _) in entries.items():
        if key != kind and key not in _ITEM_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in {kind} item (allowed: {kind}, examples, metadata)",
                yn.where(path, knode, key),
            )
    name = yn.expect_str(path, entries[kind][1], f"{kind} name", kind)
    if "examples" not in entries:
        raise ConfigError(f"{kind} {name!r} has no examples", yn.where(path, node, "examples"))
    lines = list(_example_lines(path, entries["examples"][1]))
    if not lines:
        raise ConfigError(
            f"{kind} {name!r} has no examples", yn.where(path, entries["examples"][1], "examples")
        )
    metadata = yn.value(entries["metadata"][1]) if "metadata" in entries else None
    _ADDERS[kind](path, name, lines, metadata, acc)


def _example_lines(path: Path, node: yaml.Node):
    """(text, line, metadata) for block (`|`) examples or a list of strings / {text, metadata}."""
    if isinstance(node, yaml.ScalarNode):
        first = node.start_mark.line + (2 if node.style in {"|", ">"} else 1)
        for offset, raw in enumerate(str(node.value).split("\n")):
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("- ") and line != "-":
                raise ConfigError(
                    f"example line must start with '- ': {line[:40]!r}",
                    Location(str(path), first + offset, "examples"),
                )
            yield line[1:].strip(), first + offset, None
        return
    seq = yn.expect_sequence(path, node, "examples", "examples")
    for item in seq.value:
        if isinstance(item, yaml.MappingNode):
            spec = {k: v for k, _, v in yn.items(item)}
            if "text" not in spec:
                raise ConfigError("example needs a 'text' key", yn.where(path, item, "text"))
            meta = yn.value(spec["metadata"]) if "metadata" in spec else None
            yield (
                yn.expect_str(path, spec["text"], "example text", "text").strip(),
                item.start_mark.line + 1,
                meta,
            )
        else:
            yield (
                yn.expect_str(path, item, "example", "examples").strip(),
                item.start_mark.line + 1,
                None,
            )


def _add_intent(path: Path, name: str, lines, metadata, acc: _Accumulator) -> None:
    if name.count("/") > 1 or name.startswith("/") or name.endswith("/"):
        raise ConfigError(
            f"intent name {name!r} is not `name` or `name/sub`",
            Location(str(path), lines[0][1], "intent"),
        )
    if name.startswith(f"{OUT_OF_SCOPE}/"):
        name = OUT_OF_SCOPE  # Rasa's out_of_scope/other, /non_english: all out of scope
    for raw, line, meta in lines:
        loc = Location(str(path), line, "examples")
        try:
            text, entities = parse_markup(raw)
        except MarkupError as exc:
            raise ConfigError(str(exc), loc) from None
        if has_unclosed_markup(text):
            raise ConfigError(f"malformed entity annotation in {raw[:60]!r}", loc)
        if not text.strip():
            raise ConfigError("empty example", loc)
        acc.add_example(Example(text, name, entities, loc, meta if meta is not None else metadata))


def _add_synonym(path: Path, name: str, lines, metadata, acc: _Accumulator) -> None:
    for raw, _, _ in lines:
        acc.synonyms[raw.lower()] = name


def _add_regex(path: Path, name: str, lines, metadata, acc: _Accumulator) -> None:
    for raw, line, _ in lines:
        loc = Location(str(path), line, "examples")
        try:
            re.compile(raw)
        except re.error as exc:
            raise ConfigError(f"regex {name!r} does not compile: {exc}", loc) from None
        acc.regexes.append(RegexPattern(name, raw, loc))


def _add_lookup(path: Path, name: str, lines, metadata, acc: _Accumulator) -> None:
    acc.lookups.setdefault(name, []).extend(raw for raw, _, _ in lines)


_ADDERS = {
    "intent": _add_intent,
    "synonym": _add_synonym,
    "regex": _add_regex,
    "lookup": _add_lookup,
}


def _load_responses(path: Path, node: yaml.Node, acc: _Accumulator) -> None:
    node = yn.expect_mapping(path, node, "responses", "responses")
    for key, knode, vnode in yn.items(node):
        if not key.startswith("utter_"):
            raise ConfigError("response names start with 'utter_'", yn.where(path, knode, key))
        acc.responses[key] = yn.value(vnode)


def missing_retrieval_responses(data: TrainingData, known: set[str]) -> list[ConfigError]:
    """Retrieval intents `faq/ask_x` need a response `utter_faq/ask_x` (here or in domain.yml)."""
    problems = []
    for intent in sorted(data.retrieval_intents):
        if f"utter_{intent}" not in known and f"utter_{intent}" not in data.responses:
            first = next(e for e in data.examples if e.intent == intent)
            problems.append(
                ConfigError(
                    f"retrieval intent {intent!r} has no response utter_{intent}", first.location
                )
            )
    return problems
