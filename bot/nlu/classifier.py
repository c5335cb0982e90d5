"""The intent classifier: one linear model over n-gram and (optionally) sentence-embedding features.

Fitted by `bot.nlu.train` with scikit-learn's LinearSVC; applied by `Interpreter.parse` (step 6
of the message path) with plain numpy over the saved weights. Also keeps the normalised
training vectors the out-of-scope decision compares a text with (nearest-neighbour closeness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from bot.errors import NluError
from bot.nlu.features import NgramFeaturizer, SparseVector, join_blocks


@dataclass(slots=True)
class Features:
    """A batch of texts in the classifier's space: n-gram block (sparse) + embeddings (dense)."""

    ngrams: sparse.csr_matrix | None
    embeddings: np.ndarray | None

    def rows(self, idx: np.ndarray) -> Features:
        return Features(
            self.ngrams[idx] if self.ngrams is not None else None,
            self.embeddings[idx] if self.embeddings is not None else None,
        )

    def __len__(self) -> int:
        block = self.ngrams if self.ngrams is not None else self.embeddings
        return block.shape[0]


def featurize(featurizers: list[NgramFeaturizer], texts: list[str], embeddings: np.ndarray | None):
    blocks = [f.transform(texts) for f in featurizers]
    ngrams = sparse.hstack(blocks, format="csr", dtype=np.float32) if blocks else None
    return Features(ngrams, embeddings)


@dataclass(slots=True)
class LinearModel:
    classes: list[str]
    ngram_weights: np.ndarray | None  # (n_ngram_features, n_classes)
    embedding_weights: np.ndarray | None  # (dim, n_classes), already times the block weight
    bias: np.ndarray
    neighbours_ngrams: sparse.csr_matrix | None  # (n_ngram_features, n_examples), unit columns
    neighbours_embeddings: np.ndarray | None  # (n_examples, dim)

    @classmethod
    def fit(
        cls,
        features: Features,
        labels: list[str],
        *,
        C: float,
        max_iter: int,
        embedding_weight: float,
        oos_intent: str,
    ) -> LinearModel:
        from sklearn.svm import LinearSVC

        classes = sorted(set(labels))
        if len(classes) < 2:
            raise NluError("training needs at least two intents")
        matrix = _design(features, embedding_weight)
        y = np.array([classes.index(label) for label in labels])
        svc = LinearSVC(C=C, max_iter=max_iter).fit(matrix, y)
        coef, bias = svc.coef_, svc.intercept_
        if len(classes) == 2:  # scikit-learn keeps one row for two classes
            coef, bias = np.vstack([-coef[0], coef[0]]), np.array([-bias[0], bias[0]])
        coef = coef.T.astype(np.float32)
        n_ngram = features.ngrams.shape[1] if features.ngrams is not None else 0
        in_scope = np.array([label != oos_intent for label in labels])
        return cls(
            classes,
            coef[:n_ngram] if features.ngrams is not None else None,
            coef[n_ngram:] * embedding_weight if features.embeddings is not None else None,
            bias.astype(np.float32),
            _unit_columns(features.ngrams[in_scope]) if features.embeddings is None else None,
            features.embeddings[in_scope] if features.embeddings is not None else None,
        )

    def decisions(self, features: Features) -> np.ndarray:
        out = np.tile(self.bias.astype(np.float64), (len(features), 1))
        if self.ngram_weights is not None:
            out += features.ngrams @ self.ngram_weights
        if self.embedding_weights is not None:
            out += features.embeddings @ self.embedding_weights
        return out

    def closeness(self, features: Features, chunk: int = 512) -> np.ndarray:
        """Cosine similarity to the nearest in-scope training example, per text."""
        out = np.zeros(len(features))
        unit = (
            None
            if self.neighbours_embeddings is not None
            else _unit_columns(features.ngrams).T.tocsr()
        )
        for start in range(0, len(features), chunk):  # chunks bound the similarity matrix
            part = slice(start, start + chunk)
            if unit is None:
                sims = features.embeddings[part] @ self.neighbours_embeddings.T
            else:
                sims = (unit[part] @ self.neighbours_ngrams).toarray()
            if sims.shape[1]:
                out[part] = sims.max(axis=1)
        return out

    def decide_one(self, vector: SparseVector | None, embedding: np.ndarray | None):
        """(decisions, closeness) for one text, without scipy's per-call overhead."""
        scores = self.bias.astype(np.float64)
        close = 0.0
        if vector is not None and self.ngram_weights is not None and len(vector.indices):
            scores = scores + vector.values @ self.ngram_weights[vector.indices]
        if embedding is not None and self.embedding_weights is not None:
            scores = scores + embedding @ self.embedding_weights
            close = float((self.neighbours_embeddings @ embedding).max())
        elif vector is not None and len(vector.indices):
            rows = self.neighbours_ngrams[vector.indices]
            unit = vector.values / np.sqrt(vector.values @ vector.values)
            close = float((rows.T @ unit).max()) if rows.nnz else 0.0
        return scores, close


def _design(features: Features, embedding_weight: float):
    blocks = []
    if features.ngrams is not None:
        blocks.append(features.ngrams)
    if features.embeddings is not None:
        blocks.append(sparse.csr_matrix(features.embeddings * embedding_weight))
    return sparse.hstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]


def _unit_columns(rows: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows l2-normalised, returned transposed (features x examples) for column lookups."""
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    unit = sparse.diags(1.0 / norms) @ rows
    return unit.T.tocsr().astype(np.float32)


def single_vector(featurizers: list[NgramFeaturizer], offsets: list[int], text: str):
    if not featurizers:
        return None
    return join_blocks([f.vector(text) for f in featurizers], offsets)
