"""The compliance phrase model: plain-language STOP / START / HELP in any words (pure once built).

Runs after exact keywords, typos and explicit wording miss. Trained from three sources, so it
tells a request about the texts from everything else a fan may say:

- the phrases shipped inside the engine (`phrases/*.yml`: opt-out, opt-in, help and "other",
  in five languages), the only positives;
- a background of ordinary texts (`background/hwu64.txt`, HWU64, CC BY 4.0): "cancel my alarm",
  "tell me about the news" are requests, not opt-outs;
- the line's own NLU examples (`bot.compliance.line`): where fans say "tell me about rasa",
  "tell me about rasa" is the line's question, never an opt-out.

TF-IDF character n-grams (typos, accents, other languages) and word n-grams (politeness,
longer sentences) into a logistic regression. Training is deterministic (fixed data order,
lbfgs) and takes a few seconds; a prediction is a few hundred microseconds (by hand, below).
A trained model is plain arrays and JSON (`state()` / `restore()`), never a pickle.
"""

from __future__ import annotations

import hashlib
import math
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import numpy as np
import yaml
from scipy import sparse

LABELS = ("opt_out", "opt_in", "help", "other")
MAX_CHARS = 320  # two SMS segments: the ask is at the start of a longer text, if anywhere
DECISIONS_KEPT = 4096  # `compliance.classify` decisions kept per model (texts repeat)
# the background together weighs this many times the shipped "other" phrases: enough to teach
# what ordinary language looks like, not so much that a plain "i'm done with these" is drowned
# (chosen on the dev sets, see docs/flows.md)
NEGATIVE_WEIGHT = 1.0
# each of the line's own examples weighs as much as a shipped phrase: one example of the line
# ("what is this number" in its `ask_capabilities`) outweighs the generic reading
LINE_WEIGHT = 2.0
_VECTORIZERS = (
    {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True},
    {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True,
     "token_pattern": r"(?u)\b\w+\b"},
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    label: str
    language: str  # a language code; "background" or "line" for the negatives


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


def load_background() -> tuple[str, ...]:
    """The shipped ordinary texts (one a line, `#` comments), in file order."""
    entry = resources.files("bot.compliance") / "background" / "hwu64.txt"
    lines = entry.read_text(encoding="utf-8").splitlines()
    return tuple(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))


def _digest(prepared: str) -> str:
    # the line's examples are kept as digests: the saved model carries no fan-facing text twice
    return hashlib.sha256(prepared.encode()).hexdigest()[:16]


def prepare(text: str) -> str:
    """Lower case, accents folded, whitespace squeezed, cut to MAX_CHARS."""
    text = unicodedata.normalize("NFKD", text[:MAX_CHARS].lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("\u2019", "'")
    return " ".join(text.split())


def training_set(
    shipped: Sequence[Phrase], background: Sequence[str], line: Sequence[str] = ()
) -> tuple[list[str], list[str], np.ndarray]:
    """(texts, labels, weights): shipped phrases balanced by label; the `background` ("other")
    shares NEGATIVE_WEIGHT x the shipped "other" weight; each of the `line`'s examples ("other")
    weighs LINE_WEIGHT. A shipped phrase that is also a line example is dropped: the line's own
    examples say what its fans mean ("i dont want to do this anymore" is the demo's `cancel`);
    keywords and explicit wording still come first, whatever a line says."""
    own = list(dict.fromkeys(t for t in map(prepare, line) if t))
    taken = set(own)
    generic = list(dict.fromkeys(t for t in map(prepare, background) if t and t not in taken))
    shipped = [p for p in shipped if prepare(p.text) not in taken]
    texts = [prepare(p.text) for p in shipped]
    labels = [p.label for p in shipped]
    counts = Counter(labels)
    weights = [len(shipped) / (len(counts) * counts[label]) for label in labels]
    if generic:
        each = NEGATIVE_WEIGHT * len(shipped) / len(counts) / len(generic)
        texts, labels, weights = (
            texts + generic,
            labels + ["other"] * len(generic),
            weights + [each] * len(generic),
        )
    texts, labels, weights = (
        texts + own,
        labels + ["other"] * len(own),
        weights + [LINE_WEIGHT] * len(own),
    )
    return texts, labels, np.asarray(weights)


class PhraseModel:
    """Probabilities of each label for a text."""

    def __init__(
        self, phrases: Sequence[Phrase], background: Sequence[str] = (), line: Sequence[str] = ()
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        vectorizers = tuple(TfidfVectorizer(**o) for o in _VECTORIZERS)  # type: ignore[arg-type]
        texts, labels, weights = training_set(phrases, background, line)
        features = sparse.hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
        classifier = LogisticRegression(C=20.0, max_iter=3000)
        with threadpool_limits(1):  # BLAS threads only contend on a small problem
            classifier.fit(features, labels, sample_weight=weights)
        self._fitted = (vectorizers, classifier)  # for `reference` (tests) only
        self._line = frozenset(_digest(t) for t in map(prepare, line) if t)
        vocabularies = [sorted(v.vocabulary_, key=v.vocabulary_.__getitem__) for v in vectorizers]
        self._build(
            tuple(str(c) for c in classifier.classes_), classifier.intercept_,
            vocabularies, [v.idf_ for v in vectorizers], classifier.coef_.T,
        )  # fmt: skip
        self.examples = len(texts)

    def _build(self, labels, intercept, vocabularies, idfs, coef) -> None:  # type: ignore[no-untyped-def]
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.labels: tuple[str, ...] = labels
        # `compliance.classify`'s recent decisions with this model (pure: text and values)
        self.decisions = Decisions(DECISIONS_KEPT)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._coef = np.asarray(coef, dtype=np.float64)  # (features, labels): 4 labels, never 2
        self._vocabularies = vocabularies
        self._parts = []
        offset = 0
        for options, words, idf in zip(_VECTORIZERS, vocabularies, idfs, strict=True):
            size = len(words)
            analyzer = TfidfVectorizer(**options).build_analyzer()  # type: ignore[arg-type]
            index = {w: i for i, w in enumerate(words)}
            part = (analyzer, index, np.asarray(idf), self._coef[offset : offset + size])
            self._parts.append(part)
            offset += size

    def is_line_example(self, text: str) -> bool:
        """`text` is one of the line's own examples (as `prepare` reads them)."""
        return _digest(prepare(text)) in self._line

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
        vectorizers, classifier = self._fitted
        prepared = [prepare(text)]
        row = sparse.hstack([v.transform(prepared) for v in vectorizers]).tocsr()
        return classifier.predict_proba(row)[0]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays): everything `restore` needs, no pickle."""
        meta = {"labels": list(self.labels), "vocabularies": self._vocabularies,
                "examples": self.examples, "line": sorted(self._line)}  # fmt: skip
        arrays = {"intercept": self._intercept, "coef": self._coef}
        arrays |= {f"idf_{i}": p[2] for i, p in enumerate(self._parts)}
        return meta, arrays

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> PhraseModel:
        model = cls.__new__(cls)
        idfs = [arrays[f"idf_{i}"] for i in range(len(_VECTORIZERS))]
        model._build(tuple(meta["labels"]), arrays["intercept"], meta["vocabularies"], idfs,
                     arrays["coef"])  # fmt: skip
        model.examples = int(meta.get("examples", 0))
        model._line = frozenset(meta.get("line", ()))
        return model


class Decisions:
    """A bounded memo (thread-safe: one dict operation at a time under the GIL); when full it
    starts again, which costs one decision per text at worst."""

    def __init__(self, size: int) -> None:
        self._items: dict[Any, Any] = {}
        self._size = size

    def get(self, key: Any, default: Any = None) -> Any:
        return self._items.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        if len(self._items) >= self._size:
            self._items = {}
        self._items[key] = value


class _Shared:
    """The line-independent model (shipped phrases + background), built once per process: what
    `classify` uses when no line's model is given (tools, tests, a line without data)."""

    _lock = threading.Lock()

    @cached_property
    def model(self) -> PhraseModel:
        with self._lock:
            return PhraseModel(load_phrases(), load_background())


_shared = _Shared()


def model() -> PhraseModel:
    return _shared.model
