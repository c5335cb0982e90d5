"""The compliance phrase model: plain-language STOP / START / HELP in any words (pure once built).

Runs after exact keywords and typos miss. Trained from the phrases shipped inside the engine
(`bot/compliance/phrases/*.yml`, so every fan line gets them, whatever its own NLU data), once
per process on first use: TF-IDF character n-grams (typos, accents, other languages) and word
n-grams (politeness, longer sentences) into a logistic regression. Training is deterministic
(fixed data order, lbfgs) and takes well under a second; a prediction is a few hundred
microseconds.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

import numpy as np
import yaml
from scipy import sparse

LABELS = ("opt_out", "opt_in", "help", "other")
MAX_CHARS = 320  # two SMS segments: the ask is at the start of a longer text, if anywhere


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    label: str
    language: str


def load_phrases() -> tuple[Phrase, ...]:
    """Every shipped training phrase, in a fixed order (files by name, then as written)."""
    folder = resources.files("bot.compliance") / "phrases"
    phrases: list[Phrase] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        doc = yaml.safe_load(entry.read_text(encoding="utf-8"))
        label = doc["label"]
        if label not in LABELS:
            raise ValueError(f"{entry.name}: label must be one of {', '.join(LABELS)}")
        for language, texts in doc["examples"].items():
            phrases.extend(Phrase(str(t), label, language) for t in texts)
    return tuple(phrases)


def prepare(text: str) -> str:
    """Lower case, accents folded, whitespace squeezed, cut to MAX_CHARS."""
    text = unicodedata.normalize("NFKD", text[:MAX_CHARS].lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("\u2019", "'")
    return " ".join(text.split())


class PhraseModel:
    """Probabilities of each label for a text."""

    def __init__(self, phrases: tuple[Phrase, ...]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        self._vectorizers = (
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+\b"),
        )  # fmt: skip
        texts = [prepare(p.text) for p in phrases]
        features = sparse.hstack([v.fit_transform(texts) for v in self._vectorizers]).tocsr()
        classifier = LogisticRegression(C=20.0, max_iter=2000, class_weight="balanced")
        with threadpool_limits(1):  # BLAS threads only contend on a small problem
            classifier.fit(features, [p.label for p in phrases])
        self._classifier = classifier
        self.labels: tuple[str, ...] = tuple(str(c) for c in classifier.classes_)
        coef = classifier.coef_.T  # (features, labels); binary problems never happen: 4 labels
        self._intercept = classifier.intercept_
        self._parts = []
        offset = 0
        for v in self._vectorizers:
            size = len(v.vocabulary_)
            part = (
                v.build_analyzer(),
                v.vocabulary_,
                v.idf_,
                np.ascontiguousarray(coef[offset : offset + size]),
            )
            self._parts.append(part)
            offset += size

    def probabilities(self, text: str) -> dict[str, float]:
        # the TF-IDF vector and the dot product by hand: sklearn's per-call checks cost 20x more
        prepared = prepare(text)
        scores = self._intercept.copy()
        for analyzer, vocabulary, idf, coef in self._parts:
            rows, weights = [], []
            for gram, n in Counter(analyzer(prepared)).items():
                j = vocabulary.get(gram)
                if j is not None:
                    rows.append(j)
                    weights.append((1.0 + math.log(n)) * idf[j])  # sublinear tf x idf
            if rows:
                w = np.asarray(weights)
                scores += (w / math.sqrt(float(w @ w))) @ coef[rows]  # l2-normalised, as sklearn
        exp = np.exp(scores - scores.max())
        probs = exp / exp.sum()
        return {label: float(p) for label, p in zip(self.labels, probs, strict=True)}

    def reference(self, text: str) -> np.ndarray:
        """The same scores through sklearn (for the tests that pin the hand-written path)."""
        prepared = [prepare(text)]
        row = sparse.hstack([v.transform(prepared) for v in self._vectorizers]).tocsr()
        return self._classifier.predict_proba(row)[0]


class _Shared:
    """One model per process, built on first use (or by `warm_up()` at start-up)."""

    _lock = threading.Lock()

    @cached_property
    def model(self) -> PhraseModel:
        with self._lock:
            return PhraseModel(load_phrases())


_shared = _Shared()


def model() -> PhraseModel:
    return _shared.model
