"""Word and character n-gram TF-IDF features: fitted with scikit-learn, applied without it.

Training uses `TfidfVectorizer`; the hot path (`Interpreter.parse`, step 6 of the message path)
re-applies the saved vocabulary and idf weights with a dict lookup per n-gram, because
scikit-learn's per-call overhead alone would eat the sub-millisecond budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.nlu.symbols import spell_symbols


@dataclass(frozen=True, slots=True)
class SparseVector:
    """One text's features: column indices and values (already l2-normalised per block)."""

    indices: np.ndarray
    values: np.ndarray


class NgramFeaturizer:
    """One `CountVectorsFeaturizer` block of the pipeline."""

    def __init__(self, options: dict[str, Any], vocabulary: dict[str, int], idf: np.ndarray):
        self.options = options
        self.vocabulary = vocabulary
        self.idf = idf
        self._analyze: Callable[[str], list[str]] = _vectorizer(options).build_analyzer()

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def fit(
        cls, options: dict[str, Any], texts: list[str]
    ) -> tuple[NgramFeaturizer, sparse.csr_matrix]:
        vectorizer = _vectorizer(options)
        min_df = options["min_df"]
        spelt = [spell_symbols(t) for t in texts]
        try:
            matrix = vectorizer.fit_transform(spelt)
        except ValueError:  # min_df prunes everything on tiny data: keep every n-gram
            vectorizer.set_params(min_df=1)
            min_df = 1
            matrix = vectorizer.fit_transform(spelt)
        vocab = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        idf = vectorizer.idf_.astype(np.float64) if options["use_idf"] else np.ones(len(vocab))
        featurizer = cls({**options, "min_df": min_df}, vocab, idf)
        del matrix  # re-derived below so training sees exactly what parse() computes
        return featurizer, featurizer.transform(texts)

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Batch form (training, evaluation): same numbers as `vector()`."""
        rows = [self.vector(t) for t in texts]
        indptr = np.cumsum([0] + [len(r.indices) for r in rows])
        indices = np.concatenate([r.indices for r in rows]) if rows else np.zeros(0, np.int64)
        values = np.concatenate([r.values for r in rows]) if rows else np.zeros(0, np.float32)
        return sparse.csr_matrix((values, indices, indptr), shape=(len(texts), self.size))

    def vector(self, text: str) -> SparseVector:
        counts = Counter(self._analyze(spell_symbols(text)))
        vocab = self.vocabulary
        pairs = [(vocab[g], n) for g, n in counts.items() if g in vocab]
        if not pairs:
            return SparseVector(np.zeros(0, np.int64), np.zeros(0, np.float32))
        pairs.sort()
        idx = np.fromiter((i for i, _ in pairs), np.int64, len(pairs))
        sublinear = self.options["sublinear_tf"]
        tf = np.fromiter(
            ((1.0 + math.log(n)) if sublinear else float(n) for _, n in pairs),
            np.float64,
            len(pairs),
        )
        vals = tf * self.idf[idx]
        vals /= np.sqrt(vals @ vals)
        return SparseVector(idx, vals.astype(np.float32))

    def state(self) -> dict[str, Any]:
        return {"options": self.options, "vocabulary": self.vocabulary}


def _vectorizer(options: dict[str, Any]) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=options["analyzer"],
        ngram_range=(options["min_ngram"], options["max_ngram"]),
        min_df=options["min_df"],
        max_features=options["max_features"],
        sublinear_tf=options["sublinear_tf"],
        use_idf=options["use_idf"],
        lowercase=options["lowercase"],
        dtype=np.float64,
    )


def join_blocks(vectors: list[SparseVector], offsets: list[int]) -> SparseVector:
    """Concatenate per-block vectors into the classifier's column space."""
    if len(vectors) == 1:
        return vectors[0]
    return SparseVector(
        np.concatenate([v.indices + off for v, off in zip(vectors, offsets, strict=True)]),
        np.concatenate([v.values for v in vectors]),
    )
