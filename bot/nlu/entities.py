"""Entity extraction: regexes, lookup tables, synonyms and a token tagger learnt from annotations.

Trained by `bot.nlu.train`, run by `Interpreter.parse` (step 6 of the message path); the flow
engine fills slots from the resulting `Entity` values. The tagger is a linear model over
token features, fitted with scikit-learn and applied with numpy (no pickle, fast per text).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from bot.messages import Entity
from bot.nlu.data import TrainingData

_TOKEN = re.compile(r"\w+(?:['’]\w+)?|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


class PatternExtractor:
    """`RegexEntityExtractor`: regexes named after an entity, and lookup tables."""

    name = "RegexEntityExtractor"

    def __init__(self, patterns: dict[str, list[str]], options: dict[str, Any]):
        self.patterns = patterns
        self.options = options
        flags = 0 if options["case_sensitive"] else re.IGNORECASE
        self._compiled = [
            (n, re.compile("|".join(f"(?:{p})" for p in ps), flags)) for n, ps in patterns.items()
        ]

    @classmethod
    def from_data(cls, data: TrainingData, options: dict[str, Any]) -> PatternExtractor:
        # As in Rasa: only a regex or lookup named after an annotated entity extracts it; the
        # others (a regex named after an intent, say) are features of the tagger, not entities.
        patterns = training_patterns(data, options, only=data.entities)
        return cls(patterns, options)

    def extract(self, text: str) -> list[Entity]:
        found = []
        for name, pattern in self._compiled:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    found.append(Entity(name, m.group(0), m.start(), m.end(), extractor=self.name))
        return found

    def state(self) -> dict[str, Any]:
        return {"patterns": self.patterns, "options": self.options}


def training_patterns(
    data: TrainingData, options: dict[str, Any], only: set[str] | None = None
) -> dict[str, list[str]]:
    """name -> regexes, from the data's regexes and lookup tables (lookups as alternations)."""
    patterns: dict[str, list[str]] = {}
    if options.get("use_regexes", True):
        for regex in data.regexes:
            if only is None or regex.name in only:
                patterns.setdefault(regex.name, []).append(regex.pattern)
    if options.get("use_lookup_tables", True):
        for name, values in data.lookups.items():
            if only is not None and name not in only:
                continue
            alternatives = sorted((re.escape(v) for v in values), key=len, reverse=True)
            edge = r"\b" if options.get("use_word_boundaries", True) else ""
            patterns.setdefault(name, []).append(edge + "(?:" + "|".join(alternatives) + ")" + edge)
    return patterns


def _compile(patterns: dict[str, list[str]]) -> list[tuple[str, re.Pattern[str]]]:
    return [(n, re.compile("|".join(f"(?:{p})" for p in ps), re.IGNORECASE))
            for n, ps in patterns.items()]  # fmt: skip


class TokenTagger:
    """`TokenEntityExtractor`: BIO tags per token from a linear model over token features."""

    name = "TokenEntityExtractor"

    def __init__(
        self,
        vocabulary: dict[str, int],
        weights: np.ndarray,
        bias: np.ndarray,
        labels: list[str],
        window: int,
        min_confidence: float = 0.6,
        patterns: dict[str, list[str]] | None = None,
    ):
        self.vocabulary = vocabulary
        self.weights = weights  # (n_features, n_labels)
        self.bias = bias
        self.labels = labels
        self.window = window
        # a lone word in capitals ("TOUR") looks a bit like a lone postal code; unsure tags are O
        self.min_confidence = min_confidence
        self._outside = labels.index("O") if "O" in labels else None
        # Rasa's RegexFeaturizer: every regex and lookup table marks the tokens it matches
        self.patterns = patterns or {}
        self._compiled = _compile(self.patterns)

    def features(self, text: str, tokens: list[tuple[str, int, int]]) -> list[list[str]]:
        rows = token_features(tokens, self.window)
        for name, pattern in self._compiled:
            for m in pattern.finditer(text):
                for i, (_, start, end) in enumerate(tokens):
                    if start >= m.start() and end <= m.end() and m.end() > m.start():
                        rows[i].append(f"pattern={name}")
        return rows

    @classmethod
    def fit(cls, data: TrainingData, options: dict[str, Any]) -> TokenTagger | None:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        annotated = [e for e in data.examples if e.entities]
        counts: dict[str, int] = {}
        for e in annotated:
            for ent in e.entities:
                counts[ent.entity] = counts.get(ent.entity, 0) + 1
        if not counts or max(counts.values()) < options["min_examples"]:
            return None
        rows: list[dict[str, float]] = []
        tags: list[str] = []
        featurizer = cls({}, np.zeros((0, 1)), np.zeros(1), ["O"], options["window"],
                         patterns=training_patterns(data, {}))  # fmt: skip
        for example in data.examples:  # unannotated texts teach "O" too
            tokens = tokenize(example.text)
            rows += [dict.fromkeys(f, 1.0) for f in featurizer.features(example.text, tokens)]
            tags += bio_tags(tokens, example.entities)
        if len(set(tags)) < 2:
            return None
        vectorizer = DictVectorizer()
        matrix = vectorizer.fit_transform(rows)
        # one BLAS thread: SciPy's L-BFGS-B (1.15 on) spends its time in OpenBLAS threads that
        # only contend on a problem this small (demo line: 9.8 s -> 0.5 s on 2 busy cores)
        with threadpool_limits(1):
            model = LogisticRegression(C=options["C"], max_iter=1000).fit(matrix, tags)
        labels = [str(c) for c in model.classes_]
        coef, bias = model.coef_, model.intercept_
        if len(labels) == 2:  # binary: scikit-learn keeps one row; expand to two columns
            coef = np.vstack([-coef[0], coef[0]])
            bias = np.array([-bias[0], bias[0]])
        vocab = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        return cls(
            vocab, coef.T.astype(np.float32), bias.astype(np.float32), labels, options["window"],
            options.get("min_confidence", 0.6), featurizer.patterns,
        )  # fmt: skip

    def extract(self, text: str) -> list[Entity]:
        tokens = tokenize(text)
        if not tokens:
            return []
        scores = np.tile(self.bias, (len(tokens), 1))
        for i, feats in enumerate(self.features(text, tokens)):
            idx = [self.vocabulary[f] for f in feats if f in self.vocabulary]
            if idx:
                scores[i] += self.weights[idx].sum(axis=0)
        best = scores.argmax(axis=1)
        if self._outside is not None:
            probs = np.exp(scores - scores.max(axis=1, keepdims=True))
            confidence = probs[np.arange(len(tokens)), best] / probs.sum(axis=1)
            best = np.where(confidence < self.min_confidence, self._outside, best)
        return decode_bio(text, tokens, [self.labels[j] for j in best], self.name)


def token_features(tokens: list[tuple[str, int, int]], window: int) -> list[list[str]]:
    words = [t[0] for t in tokens]
    lower = [w.lower() for w in words]
    out = []
    for i, word in enumerate(words):
        feats = [
            f"w={lower[i]}",
            f"suf3={lower[i][-3:]}",
            f"pre2={lower[i][:2]}",
            f"shape={_shape(word)}",
        ]
        for d in range(1, window + 1):
            feats.append(f"w-{d}={lower[i - d] if i - d >= 0 else '<s>'}")
            feats.append(f"w+{d}={lower[i + d] if i + d < len(words) else '</s>'}")
        out.append(feats)
    return out


def _shape(word: str) -> str:
    if word.isdigit():
        return "digits"
    if word[:1].isupper():
        return "Title" if word[1:].islower() or len(word) == 1 else "UPPER"
    return "lower" if word.isalpha() else "other"


def bio_tags(tokens: list[tuple[str, int, int]], entities: tuple[Entity, ...]) -> list[str]:
    tags = ["O"] * len(tokens)
    for ent in entities:
        inside = [i for i, (_, s, e) in enumerate(tokens) if s >= ent.start and e <= ent.end]
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + ent.entity
    return tags


def decode_bio(text: str, tokens, tags: list[str], extractor: str) -> list[Entity]:
    entities: list[Entity] = []
    current: list[Any] | None = None  # [name, start, end]
    for (_, start, end), tag in zip(tokens, tags, strict=True):
        if tag == "O":
            current = None
            continue
        prefix, name = tag.split("-", 1)
        if current is not None and prefix == "I" and current[0] == name:
            current[2] = end
            entities[-1] = Entity(
                name, text[current[1] : end], current[1], end, extractor=extractor
            )
            continue
        current = [name, start, end]
        entities.append(Entity(name, text[start:end], start, end, extractor=extractor))
    return entities


def map_synonyms(entities: list[Entity], synonyms: dict[str, str]) -> list[Entity]:
    """`EntitySynonymMapper`: replace a value by its canonical form, keep the span."""
    out = []
    for ent in entities:
        key = str(ent.value).lower()
        if key in synonyms:
            ent = Entity(
                ent.entity,
                synonyms[key],
                ent.start,
                ent.end,
                ent.role,
                ent.group,
                f"{ent.extractor},EntitySynonymMapper",
            )
        out.append(ent)
    return out


def merge(entities: list[Entity]) -> list[Entity]:
    """Drop spans that overlap an earlier (higher-priority) extractor's span."""
    kept: list[Entity] = []
    for ent in entities:
        if all(ent.end <= k.start or ent.start >= k.end for k in kept):
            kept.append(ent)
    return sorted(kept, key=lambda e: e.start or 0)
