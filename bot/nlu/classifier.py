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
    # In-scope training examples grouped by class: class c owns columns (rows for embeddings)
    # starts[c]:starts[c + 1]. Grouping lets parse() compare a text with the examples of its
    # top-k intents only instead of the whole training set.
    neighbours_ngrams: sparse.csr_matrix | None  # (n_ngram_features, n_examples), unit columns
    neighbours_embeddings: np.ndarray | None  # (n_examples, dim)
    starts: np.ndarray  # (n_classes + 1,) offsets into the grouped examples

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
        oos = classes.index(oos_intent) if oos_intent in classes else -1
        grouped = np.argsort(np.where(y == oos, len(classes), y), kind="stable")
        grouped = grouped[y[grouped] != oos]
        starts = np.searchsorted(y[grouped], np.arange(len(classes) + 1)).astype(np.int64)
        examples = features.rows(grouped)
        return cls(
            classes,
            coef[:n_ngram] if features.ngrams is not None else None,
            coef[n_ngram:] * embedding_weight if features.embeddings is not None else None,
            bias.astype(np.float32),
            _unit_columns(examples.ngrams) if features.embeddings is None else None,
            np.ascontiguousarray(examples.embeddings) if features.embeddings is not None else None,
            starts,
        )

    def decisions(self, features: Features) -> np.ndarray:
        out = np.tile(self.bias.astype(np.float64), (len(features), 1))
        if self.ngram_weights is not None:
            out += features.ngrams @ self.ngram_weights
        if self.embedding_weights is not None:
            out += features.embeddings @ self.embedding_weights
        return out

    def top_classes(self, decisions: np.ndarray, k: int, oos_column: int | None) -> np.ndarray:
        """The k best in-scope classes by margin, per row (stable order: same in both paths)."""
        masked = np.array(decisions, dtype=np.float64, ndmin=2)
        if oos_column is not None:
            masked[:, oos_column] = -np.inf
        k = min(k, masked.shape[1] - (oos_column is not None))
        return np.argsort(-masked, axis=1, kind="stable")[:, :k]

    def closeness(self, features: Features, top: np.ndarray, chunk: int = 512) -> np.ndarray:
        """Cosine similarity to the nearest training example of each row's `top` classes."""
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
            out[part] = np.take_along_axis(self._class_max(sims), top[part], axis=1).max(axis=1)
        return out

    def _class_max(self, sims: np.ndarray) -> np.ndarray:
        """(rows, n_classes): best similarity within each class's examples (0 when it has none)."""
        out = np.zeros((sims.shape[0], len(self.classes)))
        owned = np.flatnonzero(np.diff(self.starts) > 0)
        if len(owned):
            out[:, owned] = np.maximum.reduceat(sims, self.starts[owned], axis=1)
        return out

    def own_nearness(self, embedding: np.ndarray, column: int) -> float:
        """Cosine similarity of a text's embedding to the nearest example of one class (0
        without sentence embeddings or examples)."""
        if self.neighbours_embeddings is None or self.starts[column + 1] <= self.starts[column]:
            return 0.0
        examples = self.neighbours_embeddings[self.starts[column] : self.starts[column + 1]]
        return float((examples @ embedding).max())

    def decide_one(
        self,
        vector: SparseVector | None,
        embedding: np.ndarray | None,
        top_k: int,
        oos_column: int | None,
    ) -> tuple[np.ndarray, float]:
        """(decisions, closeness) for one text, without scipy's per-call overhead."""
        scores = self.bias.astype(np.float64)
        has_ngrams = vector is not None and len(vector.indices) > 0
        if has_ngrams and self.ngram_weights is not None:
            scores = scores + vector.values @ self.ngram_weights[vector.indices]
        if embedding is not None and self.embedding_weights is not None:
            scores = scores + embedding @ self.embedding_weights
        top = self.top_classes(scores, top_k, oos_column)[0]
        if embedding is not None and self.neighbours_embeddings is not None:
            nb, starts = self.neighbours_embeddings, self.starts
            close = max(
                (
                    float((nb[starts[c] : starts[c + 1]] @ embedding).max())
                    for c in top
                    if starts[c + 1] > starts[c]
                ),
                default=0.0,
            )
        elif has_ngrams and self.neighbours_ngrams is not None:
            rows = self.neighbours_ngrams[vector.indices]
            if not rows.nnz:
                return scores, 0.0
            unit = vector.values / np.sqrt(vector.values @ vector.values)
            sims = np.asarray(rows.T @ unit).reshape(1, -1)
            close = float(self._class_max(sims)[0, top].max())
        else:
            close = 0.0
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
