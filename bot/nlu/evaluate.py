"""Evaluation of a trained model: batch predictions, accuracy, per-intent P/R/F1, out-of-scope figures.

Content time only (`fanline test nlu`, `bench/nlu_clinc150.py`). Batch predictions use the same
numbers as `Interpreter.parse` (a test checks it), just computed a matrix at a time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bot.nlu.classifier import featurize
from bot.nlu.evidence import NEAR_COPY
from bot.nlu.fallback import auroc
from bot.nlu.interpreter import Interpreter, normalise
from bot.nlu.train import score_batch


@dataclass(frozen=True, slots=True)
class BatchResult:
    texts: list[str]
    best: list[str]  # best in-scope intent (full name), whatever the threshold
    confidence: np.ndarray  # calibrated confidence of `best` less the evidence's penalty
    oos_wins: np.ndarray  # the out_of_scope class itself scored highest
    calibrated: np.ndarray | None = None  # the calibrated confidence alone (parse's ranking)

    def predicted(self, threshold: float, oos_intent: str) -> list[str]:
        return [
            oos_intent if (w or c < threshold) else b
            for b, c, w in zip(self.best, self.confidence, self.oos_wins, strict=True)
        ]

    def in_scope_score(self) -> np.ndarray:
        """Threshold-free score for AUROC: low when the text looks out of scope."""
        return np.asarray(self.confidence, dtype=np.float64)


def evidence_confidence(
    model, texts: list[str], names: list[str], prob: np.ndarray, embeddings=None
) -> np.ndarray:
    """The calibrated probabilities less the evidence's penalties, as `parse` gives them."""
    cal, coverage = model.calibration, model.coverage
    column = {name: i for i, name in enumerate(model.linear.classes)}
    penalty = []
    for i, (text, name) in enumerate(zip(texts, names, strict=True)):
        uncovered = coverage.uncovered(normalise(text), name) if coverage is not None else ()
        near_copy = embeddings is not None and (
            model.linear.own_nearness(embeddings[i], column[name]) >= NEAR_COPY
        )
        unsupported = coverage is not None and coverage.unsupported(
            normalise(text), name, uncovered, specific=cal.unsupported,
            unknown=cal.unknown_words and name not in cal.taught and not near_copy,
        )  # fmt: skip
        penalty.append(cal.penalty(name, bool(uncovered), unsupported))
    return np.clip(prob - np.array(penalty, dtype=np.float64), 0.0, None)


def predict_batch(interp: Interpreter, texts: list[str], embeddings: np.ndarray | None = None):
    model = interp.model
    if model.embedding_options is not None and embeddings is None:
        embeddings = interp.encoder.encode(texts, model.embedding_options["batch_size"])
    features = featurize(model.featurizers, texts, embeddings)
    raw, predicted, oos_wins = score_batch(
        model.linear, features, model.oos_intent, model.neighbour_weight, model.neighbour_top_k,
        model.own_nearness,
    )  # fmt: skip
    names = [model.linear.classes[i] for i in predicted]
    calibrated = model.calibration.probability(raw)
    if features.ngrams is not None:  # no known n-gram: no confident guess (as in parse())
        calibrated = np.where(features.ngrams.getnnz(axis=1) > 0, calibrated, 0.0)
    confidence = evidence_confidence(model, texts, names, calibrated, embeddings)
    return BatchResult(texts, names, confidence, oos_wins, calibrated)


@dataclass(frozen=True, slots=True)
class IntentScore:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Report:
    examples: int
    accuracy: float  # over all texts, out_of_scope counted as a label
    in_scope_accuracy: float
    oos_recall: float | None
    auroc: float | None
    per_intent: list[IntentScore]
    confused: list[tuple[str, str, int]]  # (true, predicted, count), most frequent first
    threshold: float
    confidences_right: list[float] = field(default_factory=list)
    confidences_wrong: list[float] = field(default_factory=list)


def report(
    result: BatchResult,
    truth: list[str],
    threshold: float,
    oos_intent: str,
    predicted: list[str] | None = None,
) -> Report:
    """Figures for one batch; `predicted` overrides the threshold (cross-validation folds)."""
    predicted = predicted if predicted is not None else result.predicted(threshold, oos_intent)
    truth_arr = np.array(truth, dtype=object)
    pred_arr = np.array(predicted, dtype=object)
    is_oos = truth_arr == oos_intent
    right = truth_arr == pred_arr
    score = result.in_scope_score()
    return Report(
        examples=len(truth),
        accuracy=float(right.mean()) if len(truth) else 0.0,
        in_scope_accuracy=float(right[~is_oos].mean()) if (~is_oos).any() else 0.0,
        oos_recall=float(right[is_oos].mean()) if is_oos.any() else None,
        auroc=auroc(score[~is_oos], score[is_oos]) if is_oos.any() and (~is_oos).any() else None,
        per_intent=per_intent_scores(truth, predicted),
        confused=confused_pairs(truth, predicted),
        threshold=threshold,
        confidences_right=[float(c) for c, r in zip(result.confidence, right, strict=True) if r],
        confidences_wrong=[
            float(c) for c, r in zip(result.confidence, right, strict=True) if not r
        ],
    )


def per_intent_scores(truth: list[str], predicted: list[str]) -> list[IntentScore]:
    pairs = Counter(zip(truth, predicted, strict=True))
    true_n = Counter(truth)
    pred_n = Counter(predicted)
    scores = []
    for intent in sorted(set(truth) | set(predicted)):
        hit = pairs[(intent, intent)]
        p = hit / pred_n[intent] if pred_n[intent] else 0.0
        r = hit / true_n[intent] if true_n[intent] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        scores.append(IntentScore(intent, p, r, f1, true_n[intent]))
    return scores


def confused_pairs(
    truth: list[str], predicted: list[str], top: int = 10
) -> list[tuple[str, str, int]]:
    wrong = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    return [(t, p, n) for (t, p), n in wrong.most_common(top)]


def in_scope_accuracy_at_recall(
    result: BatchResult, truth: list[str], oos_intent: str, target: float = 0.9
) -> float:
    """In-scope accuracy at the threshold that escalates `target` of out-of-scope texts."""
    truth_arr = np.array(truth, dtype=object)
    is_oos = truth_arr == oos_intent
    score = result.in_scope_score()
    cut = float(np.quantile(score[is_oos], target))
    best = np.array(result.best, dtype=object)
    kept = (score > cut) & ~result.oos_wins
    return float(((best == truth_arr) & kept)[~is_oos].mean())


def concat(results: list[BatchResult]) -> BatchResult:
    return BatchResult(
        [t for r in results for t in r.texts],
        [b for r in results for b in r.best],
        np.concatenate([r.confidence for r in results]),
        np.concatenate([r.oos_wins for r in results]),
    )
