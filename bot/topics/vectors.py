"""Texts -> unit vectors for grouping: the NLU's sentence encoder, or hashed n-grams.

Used by the topic sweep (`bot.topics.sweep`) off the inbound path. With a sentence encoder in
the model (the `accurate` pipeline) the vectors are its embeddings, most of them already
computed when the text was parsed (`Interpreter.embed` keeps recent ones). Without one, word
1-2-grams and char_wb 3-5-grams are hashed (nothing is fitted, so any process computes the same
vector for the same text) and projected to 256 dimensions with a fixed seed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.random_projection import SparseRandomProjection

from bot.nlu.symbols import spell_symbols

NGRAM_DIMENSIONS = 256
_SEED = 20260805
_HASH_FEATURES = 2**16  # per analyzer
_NOT_WORD = re.compile(r"[^\w' ]+")


class Vectoriser(Protocol):
    """`kind` names the vector space: vectors of different kinds are never compared."""

    kind: str
    dimensions: int
    join_similarity: float  # defaults for this space, unless `fanline.topics` sets them
    group_distance: float

    def encode(self, texts: list[str]) -> np.ndarray:
        """One float32 unit row per text."""
        ...


def clean(text: str) -> str:
    """Symbols spelt as words or dropped, case and spacing folded: never the words themselves."""
    return " ".join(_NOT_WORD.sub(" ", spell_symbols(text).lower()).split())


class NgramVectors:
    """Hashed word and character n-grams, randomly projected (stateless, deterministic)."""

    kind = f"ngram-{NGRAM_DIMENSIONS}-v1"
    dimensions = NGRAM_DIMENSIONS
    # measured on tests/topics' set: a text's cosine to its own topic's centre >= 0.28, to
    # another's <= 0.38; average linkage keeps 4 questions x 6 phrasings apart up to 0.85
    join_similarity = 0.35
    group_distance = 0.82

    def __init__(self) -> None:
        self._words, self._chars, self._projection = _ngram_parts()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, NGRAM_DIMENSIONS), np.float32)
        cleaned = [clean(t) for t in texts]
        counts = sp.hstack([self._words.transform(cleaned), self._chars.transform(cleaned)])
        return unit_rows(np.asarray(self._projection.transform(counts.tocsr()), np.float32))


@lru_cache(maxsize=1)
def _ngram_parts() -> tuple[HashingVectorizer, HashingVectorizer, SparseRandomProjection]:
    words = HashingVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        n_features=_HASH_FEATURES,
        alternate_sign=False,
        norm="l2",
        token_pattern=r"(?u)\b\w+\b",
    )
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=_HASH_FEATURES,
                              alternate_sign=False, norm="l2")  # fmt: skip
    # density: each hashed feature reaches ~8 of the 256 dimensions (the 'auto' density,
    # 1/sqrt(features), would leave most features reaching none)
    projection = SparseRandomProjection(
        NGRAM_DIMENSIONS, density=1 / 32, dense_output=True, random_state=_SEED
    )
    projection.fit(sp.csr_matrix((1, 2 * _HASH_FEATURES), dtype=np.float64))
    return words, chars, projection


class SentenceVectors:
    """The NLU model's own sentence encoder, through `Interpreter.embed` (recent parses reused)."""

    # the same set with all-MiniLM-L6-v2: own centre >= 0.51, another's <= 0.39; pure to 0.6
    join_similarity = 0.5
    group_distance = 0.55

    def __init__(self, interpreter: Any):
        self.interpreter = interpreter
        options = getattr(interpreter, "model", None)
        options = getattr(options, "embedding_options", None) or {}
        identity = options.get("model_sha256") or options.get("model") or "encoder"
        self.kind = f"sentence-{str(identity)[:16]}"
        self.dimensions = int(interpreter.encoder.dimension)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        return unit_rows(np.asarray(self.interpreter.embed(texts), np.float32))


def vectoriser_for(interpreter: Any) -> Vectoriser:
    """The sentence encoder when the loaded model has one, else hashed n-grams."""
    if interpreter is not None and getattr(interpreter, "encoder", None) is not None:
        return SentenceVectors(interpreter)
    return NgramVectors()


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.clip(norms, 1e-12, None)).astype(np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, np.float32).tobytes()


def from_bytes(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, np.float32)
