"""The out-of-scope decision: a calibrated confidence and a threshold chosen on held-out data.

Pure numpy, used at training (calibration), in `Interpreter.parse` (step 6) and by the
evaluation and benchmark code. The raw score of a text is the classifier's best in-scope
margin, minus any vote for `out_of_scope`, plus how close the text is to the nearest training
example of that intent; a logistic fit on held-out texts turns it into a probability of
"answered right". Evidence then lowers it where the out-of-fold texts say the bar must be
higher: per intent (an intent that is often confused needs more), and for texts with content
words the intent never speaks of (`bot.nlu.evidence`). Lowering the confidence instead of
raising thresholds keeps one threshold to compare with (benchmarks move only that one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

# When the project has no out_of_scope examples, keep this share of held-out texts that the
# classifier got right: the rest of the distribution below it is treated as "not sure".
KEEP_WITHOUT_OOS = 0.95
# An intent's own threshold is its out-of-fold choice shrunk toward the global one, as if
# PRIOR_TEXTS more texts had chosen the global threshold: few texts move it little.
PRIOR_TEXTS = 20.0
# Evidence bars are chosen on small groups of out-of-fold texts: any bar within this share of
# the group's weight of the best counts as best, and the middle of that range is taken.
NEAR_BEST = 0.01


@dataclass(frozen=True, slots=True)
class Calibration:
    slope: float = 4.0
    intercept: float = 0.0
    threshold: float = 0.5  # in probability space, compared with `confidence()`
    # how much higher than `threshold` each intent's own bar is (only raised, never lowered)
    offsets: Mapping[str, float] = field(default_factory=dict)
    uncovered_offset: float = 0.0  # how much higher the bar is for a text with uncovered words
    # intents that answer no text with an uncovered word (the engine's small talk: its few,
    # generic examples would otherwise draw any question that is about nothing the line knows)
    strict: frozenset[str] = frozenset()
    # whether unsupported questions are handed over (FallbackClassifier `specific`)
    unsupported: bool = True
    # ... and questions about what no intent of the line speaks of (`unknown_words`), except
    # for intents taught from the inbox: their answer was written for a group of fans' texts
    # in their own words, grouped by meaning, so their next fan's words may be new to the line
    unknown_words: bool = False
    taught: frozenset[str] = frozenset()

    def probability(self, raw: np.ndarray | float) -> np.ndarray:
        z = np.clip(self.slope * np.asarray(raw, dtype=np.float64) + self.intercept, -30, 30)
        return 1.0 / (1.0 + np.exp(-z))

    def penalty(self, intent: str, uncovered: bool, unsupported: bool = False) -> float:
        """What the evidence takes off a probability for this intent (full name) and text;
        `unsupported`: a question about a word the intent never speaks of and nothing else
        specific to it (`Coverage.unsupported`), which no confidence makes an answer."""
        if unsupported or (uncovered and intent in self.strict):
            return 1.0
        return self.offsets.get(intent, 0.0) + (self.uncovered_offset if uncovered else 0.0)

    def state(self) -> dict:
        return {
            "slope": self.slope,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "offsets": dict(sorted(self.offsets.items())),
            "uncovered_offset": self.uncovered_offset,
            "strict": sorted(self.strict),
            "unsupported": self.unsupported,
            "unknown_words": self.unknown_words,
            "taught": sorted(self.taught),
        }


def raw_scores(decisions: np.ndarray, oos_column: int | None, neighbour: np.ndarray, weight: float):
    """Per text and class: margin of that class, less the out_of_scope vote, plus closeness."""
    scores = decisions.astype(np.float64, copy=True)
    if oos_column is not None:
        scores -= np.clip(decisions[:, [oos_column]], 0, None)
    return scores + weight * neighbour[:, None]


def best_in_scope(decisions: np.ndarray, oos_column: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, True where out_of_scope itself wins) per row."""
    masked = decisions.copy()
    if oos_column is not None:
        masked[:, oos_column] = -np.inf
    best = masked.argmax(axis=1)
    if oos_column is None:
        return best, np.zeros(len(best), bool)
    return best, decisions[:, oos_column] > masked[np.arange(len(best)), best]


def fit_calibration(
    raw: np.ndarray,
    correct: np.ndarray,
    is_oos: np.ndarray,
    oos_weight: float = 1.0,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    extra_weight: float = 1.0,
) -> Calibration:
    """Platt scaling on held-out texts, then the threshold that decides most of them right.

    raw: best in-scope raw score; correct: the in-scope intent was right; is_oos: an
    out_of_scope text. Positives are texts answered right; everything else should escalate.
    `oos_weight`: how much one out-of-scope text counts beside one in-scope text (see
    `bot.nlu.train.calibrate`: the held-out set is weighed to the benchmark protocol's shape).
    `extra`: more texts (raw, correct, is_oos) for the threshold only, each weighing
    `extra_weight` (labelled real traffic); the probability scale stays the held-out fit's.
    """
    slope, intercept = _platt(raw, correct & ~is_oos)
    cal = Calibration(slope, intercept)
    weights = np.where(is_oos, oos_weight, 1.0)
    if extra is not None and len(extra[0]):
        raw = np.concatenate([raw, extra[0]])
        correct = np.concatenate([correct, extra[1]])
        is_oos = np.concatenate([is_oos, extra[2]])
        weights = np.concatenate([weights, np.full(len(extra[0]), float(extra_weight))])
    prob = cal.probability(raw)
    return Calibration(slope, intercept, choose_threshold(prob, correct, is_oos, weights))


def evidence_offsets(
    prob: np.ndarray,
    predicted: np.ndarray,
    correct: np.ndarray,
    is_oos: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    uncovered: np.ndarray | None,
) -> tuple[dict[str, float], float]:
    """(per-intent offsets, uncovered offset) over the global threshold, chosen on out-of-fold
    texts: texts with uncovered words first (their own bar), then each predicted intent's
    texts with that bar applied. Right decisions are right answers kept plus texts escalated
    that were out of scope or would have been answered wrong. Offsets are only >= 0: evidence
    can ask for more, never answer what the global threshold would not."""
    prob = np.asarray(prob, dtype=np.float64)
    # Here a text the intent would answer wrong should reach a person as much as an
    # out-of-scope one (the fan line's aim: no wrong answers), unlike the global threshold,
    # which keeps the CLINC150 protocol's objective (a wrong in-scope answer counts as lost).
    is_oos = is_oos | ~correct
    uncovered_offset = 0.0
    if uncovered is not None and uncovered.any() and (is_oos & uncovered).any():
        t = choose_threshold(
            prob[uncovered], correct[uncovered], is_oos[uncovered], weights[uncovered], NEAR_BEST
        )
        uncovered_offset = max(0.0, t - threshold)
        prob = prob - np.where(uncovered, uncovered_offset, 0.0)
    offsets: dict[str, float] = {}
    for intent in np.unique(predicted):
        mine = predicted == intent
        if not is_oos[mine].any():
            continue  # nothing came out as this intent that it should not answer
        local = choose_threshold(prob[mine], correct[mine], is_oos[mine], weights[mine], NEAR_BEST)
        n = float(weights[mine].sum())
        shrunk = (n * local + PRIOR_TEXTS * threshold) / (n + PRIOR_TEXTS)
        if shrunk > threshold + 1e-6:
            offsets[str(intent)] = round(shrunk - threshold, 6)
    return offsets, round(uncovered_offset, 6)


def choose_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    is_oos: np.ndarray,
    weights: np.ndarray | None = None,
    tolerance: float = 0.0,
) -> float:
    """Maximise right decisions: in-scope texts answered right + out-of-scope texts escalated
    (each text counted with its weight, 1 by default: the CLINC150 protocol's objective).

    Without out-of-scope examples that would never escalate; then keep KEEP_WITHOUT_OOS of
    the correctly answered texts instead. `tolerance`: a share of all the weight; every
    threshold within it of the best counts as best, and the middle of that range is chosen
    (a flat objective on few texts would otherwise swing with one text).
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    is_oos = np.asarray(is_oos, dtype=bool)
    in_scope = ~is_oos
    if not is_oos.any():
        kept = confidence[correct & in_scope]
        return float(np.quantile(kept, 1 - KEEP_WITHOUT_OOS)) if len(kept) else 0.5
    w = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    candidates = np.unique(np.concatenate([confidence, [0.0]]))
    order = np.argsort(confidence)
    c_sorted = confidence[order]
    good_in = ((correct & in_scope) * w)[order]
    oos = (is_oos * w)[order]
    # texts with confidence < t escalate: count right answers kept and oos escalated
    below = np.searchsorted(c_sorted, candidates, side="left")
    kept_right = good_in.sum() - np.concatenate([[0], np.cumsum(good_in)])[below]
    oos_caught = np.concatenate([[0], np.cumsum(oos)])[below]
    right = np.round(kept_right + oos_caught, 9)  # weights: exact ties stay ties
    if tolerance > 0:  # the middle of the near-best range, from the last text it escalates
        near = np.flatnonzero(right >= right.max() - tolerance * float(w.sum()))
        return float((candidates[max(near[0] - 1, 0)] + candidates[near[-1]]) / 2)
    best = int(np.argmax(right))
    last = best  # ties form a plateau; its middle is the least fragile choice
    while last + 1 < len(right) and right[last + 1] == right[best]:
        last += 1
    return float((candidates[best] + candidates[last]) / 2)


def _platt(raw: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """A one-feature logistic regression by Newton steps (no scikit-learn needed here)."""
    if positive.all() or not positive.any():
        return 4.0, float(-4.0 * np.median(raw))
    x = np.asarray(raw, dtype=np.float64)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    # Platt's smoothed targets: separable held-out data must not give an infinite slope
    y = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, b = 1.0, 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a * x + b, -30, 30)))
        w = p * (1 - p) + 1e-9
        grad = np.array([((p - y) * x).sum(), (p - y).sum()]) + 1e-3 * np.array([a, 0])
        hess = np.array([[(w * x * x).sum() + 1e-3, (w * x).sum()], [(w * x).sum(), w.sum()]])
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def auroc(in_scope_scores: np.ndarray, oos_scores: np.ndarray) -> float:
    """Probability that an in-scope text scores above an out-of-scope one (ties count half)."""
    scores = np.concatenate([in_scope_scores, oos_scores])
    ranks = _average_ranks(scores)
    n_in, n_oos = len(in_scope_scores), len(oos_scores)
    if not n_in or not n_oos:
        return float("nan")
    return float((ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_oos))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks
