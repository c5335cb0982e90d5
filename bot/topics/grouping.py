"""Grouping texts by meaning (pure): join the nearest topic online, group the rest, label them.

Used by the topic sweep (`bot.topics.sweep`) and `service.regroup`. Vectors are float32 unit
rows, so cosine similarity is a dot product. New texts first `join` an open topic whose centroid
is close enough; the rest are grouped among themselves: scikit-learn's Birch summarises them in
one pass into small subclusters (bounded memory and time at any volume), and
AgglomerativeClustering on cosine merges the subclusters' centres up to a distance threshold,
so the number of topics follows the texts rather than being fixed beforehand. Deterministic:
the same vectors in the same order give the same groups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import AgglomerativeClustering, Birch
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

K = TypeVar("K")
LABEL_TERMS = 3
REDUCED_DIMENSIONS = 32  # Birch runs here: its cost grows with the dimensions
SUBCLUSTER_RADIUS = 0.5  # on the reduced, normalised vectors
_SEED = 11
MAX_LABEL = 120
# words every fan line's waiting texts share, that say nothing about the topic
_FILLER = frozenset({"hi", "hey", "hello", "pls", "plz", "please", "thanks", "thank", "thx",
                     "ok", "okay", "yes", "yeah", "lol", "just", "know", "want", "like", "im",
                     "u", "ur", "ya", "guys", "does", "did", "got", "get", "going"})  # fmt: skip
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | _FILLER)
_WORD = r"(?u)\b[^\W\d_]{2,}\b"  # words of two or more letters, not numbers


def join(
    vectors: np.ndarray, centroids: np.ndarray, min_similarity: float
) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centroid or -1, its cosine similarity) per vector."""
    n = len(vectors)
    if n == 0 or len(centroids) == 0:
        return np.full(n, -1, np.int64), np.zeros(n, np.float32)
    sims = vectors @ centroids.T
    best = np.argmax(sims, axis=1)
    best_sim = sims[np.arange(n), best].astype(np.float32)
    return np.where(best_sim >= min_similarity, best, -1).astype(np.int64), best_sim


def group(
    vectors: np.ndarray,
    distance: float,
    *,
    min_similarity: float | None = None,
    subcluster_radius: float = SUBCLUSTER_RADIUS,
) -> np.ndarray:
    """A group number per vector (0, 1, ... in order of first appearance).

    `distance` is the cosine distance (1 - similarity) up to which groups merge (average
    linkage over the subclusters' centres, in the vectors' own space). Birch only summarises:
    it runs on the vectors reduced to their main directions (PCA, fixed seed) and normalised,
    where its subclusters are balls of `subcluster_radius`; fast at 10,000s of texts.
    `min_similarity`: a text less similar than this to its group's centre (a stray that Birch's
    coarse pass swept in) is a group of its own, as it would not have joined that topic online."""
    n = len(vectors)
    if n <= 1:
        return np.zeros(n, np.int64)
    reduced = _reduce(vectors)
    birch = Birch(threshold=subcluster_radius, branching_factor=50, n_clusters=None)
    sub = _renumber(birch.fit_predict(reduced))
    count = int(sub.max()) + 1
    if count == 1:
        return sub
    sums = np.zeros((count, vectors.shape[1]), np.float64)
    np.add.at(sums, sub, vectors)
    centres = sums / np.clip(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12, None)
    merged = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
    ).fit_predict(centres)
    labels = merged[sub]
    if min_similarity is not None:
        labels = _eject_strays(vectors, labels, min_similarity)
    return _renumber(labels)


def _eject_strays(vectors: np.ndarray, labels: np.ndarray, min_similarity: float) -> np.ndarray:
    count = int(labels.max()) + 1
    sums = np.zeros((count, vectors.shape[1]), np.float64)
    np.add.at(sums, labels, vectors)
    centres = sums / np.clip(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12, None)
    similarity = np.einsum("ij,ij->i", vectors, centres[labels])
    out = labels.copy()
    strays = np.flatnonzero(similarity < min_similarity)
    out[strays] = count + np.arange(len(strays))
    return out


def _reduce(vectors: np.ndarray) -> np.ndarray:
    dims = min(REDUCED_DIMENSIONS, vectors.shape[1], len(vectors) - 1)
    if dims < 2:
        return np.ascontiguousarray(vectors, np.float64)
    # two power iterations are enough to find the topics' directions (4, the default, double
    # the time at 10,000 texts for no change in the groups)
    pca = PCA(n_components=dims, svd_solver="randomized", iterated_power=2, random_state=_SEED)
    reduced = pca.fit_transform(np.asarray(vectors, np.float32)).astype(np.float64)
    return reduced / np.clip(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12, None)


def _renumber(labels: np.ndarray) -> np.ndarray:
    first: dict[int, int] = {}
    return np.array([first.setdefault(int(x), len(first)) for x in labels], np.int64)


def centroid(vectors: np.ndarray) -> np.ndarray:
    mean = vectors.mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def running_mean(current: np.ndarray | None, size: int, added: np.ndarray) -> np.ndarray:
    """The unit centroid after `added` rows join a topic of `size` texts centred at `current`."""
    total = added.sum(axis=0)
    if current is not None and size > 0 and current.shape == total.shape:
        total = total + current * size
    return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)


def labels(texts_by_topic: Mapping[K, Sequence[str]]) -> dict[K, str]:
    """A short label per topic: its most distinctive words and bigrams (c-TF-IDF: a term's
    share of the topic's words, weighted by how rare it is across topics)."""
    keys = [k for k, texts in texts_by_topic.items() if texts]
    out: dict[K, str] = {k: "" for k in texts_by_topic}
    if not keys:
        return out
    texts = [t for k in keys for t in texts_by_topic[k]]
    owner = np.repeat(np.arange(len(keys)), [len(texts_by_topic[k]) for k in keys])
    counter = CountVectorizer(ngram_range=(1, 2), stop_words=STOP_WORDS, token_pattern=_WORD,
                              lowercase=True)  # fmt: skip
    try:
        per_text = counter.fit_transform(texts)  # bigrams never span two fans' texts
    except ValueError:  # nothing but stop words and numbers anywhere
        return out
    # per topic: the sum of its texts' counts
    sums = sp.csr_matrix((np.ones(len(texts)), (owner, np.arange(len(texts)))),
                         shape=(len(keys), len(texts)))  # fmt: skip
    counts = np.asarray((sums @ per_text).todense(), np.float64)
    terms = counter.get_feature_names_out()
    tf = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    average = counts.sum() / len(keys)
    idf = np.log(1 + average / np.clip(counts.sum(axis=0), 1, None))
    scores = tf * idf
    for row, key in enumerate(keys):
        out[key] = _label(terms, scores[row], counts[row])
    return out


def _label(terms: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> str:
    chosen: list[str] = []
    for i in np.lexsort((terms, -scores)):  # best score first, then alphabetical: stable
        if counts[i] == 0 or len(chosen) == LABEL_TERMS:
            break
        term = str(terms[i])
        if any(_overlaps(term, c) for c in chosen):
            continue
        chosen.append(term)
    return ", ".join(chosen)[:MAX_LABEL]


def _overlaps(a: str, b: str) -> bool:
    """A word already said by a chosen bigram (or a bigram repeating a chosen word)."""
    wa, wb = set(re.split(r"\s+", a)), set(re.split(r"\s+", b))
    return bool(wa & wb)
