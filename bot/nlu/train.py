"""`train()`: training data + pipeline -> a model directory, skipped when the fingerprint is unchanged.

Content time (`fanline train`, `fanline test nlu`, the benchmark). Steps: featurize, hold out
part of the data to calibrate the out-of-scope decision, fit the final model on everything,
fit the entity extractors, save with metadata. Never on the hot path.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.errors import NluError
from bot.nlu import model as store
from bot.nlu import smalltalk as shipped_smalltalk
from bot.nlu.classifier import Features, LinearModel, featurize
from bot.nlu.config import NluConfig
from bot.nlu.data import OUT_OF_SCOPE, TrainingData
from bot.nlu.entities import PatternExtractor, TokenTagger
from bot.nlu.evidence import Coverage, content_words
from bot.nlu.fallback import (
    Calibration,
    best_in_scope,
    evidence_offsets,
    fit_calibration,
    raw_scores,
)
from bot.nlu.features import NgramFeaturizer

# tqdm's default lock is a multiprocessing one, whose creation fixes the process start method to
# fork; `fanline run` then trains a missing model and Sanic (which spawns workers) refuses to
# start. Progress bars here live in one process: a thread lock is all they need.
tqdm.set_lock(threading.RLock())

SEED = 20190101
DEFAULT_TOP_K = 10  # fixed: the same data and config always give the same model


KEEP_MODELS = 5  # older models are removed after a training: a models folder doesn't grow forever


# Bumped when training itself changes what a model decides (2: k-fold calibration weighed to
# the CLINC150 protocol; 3: evidence, per-intent bars; 4: background capped by the line's size;
# 5, 6: elongated words and coded entity values in the coverage; 7: `specific`),
# so `fanline train` retrains; older models still load.
TRAINING_VERSION = 9
TAUGHT_NLU_FILE = "taught.yml"  # bot/teach/content_writer.py's data/taught.yml


@dataclass(frozen=True, slots=True)
class TrafficText:
    """A real fan's text with an agent's verdict, not trained on: the intent that should have
    answered it, or None (a person should have). Real-traffic data for the threshold."""

    text: str
    intent: str | None


def traffic_fingerprint(traffic: Sequence[TrafficText]) -> str:
    """Which labelled texts a threshold was chosen with (order does not matter)."""
    rows = sorted((t.text, t.intent or "") for t in traffic)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16] if rows else ""


def fingerprint(cfg: NluConfig, data: TrainingData) -> str:
    return hashlib.sha256(
        f"{store.FORMAT}:{TRAINING_VERSION}:{cfg.fingerprint}:{data.fingerprint}:"
        f"{shipped_smalltalk.fingerprint()}".encode()
    ).hexdigest()


def train(
    cfg: NluConfig,
    data: TrainingData,
    out_dir: Path,
    *,
    progress: bool = True,
    force: bool = False,
    traffic: Sequence[TrafficText] | None = None,
    beside: Callable[[Path], Any] | None = None,
) -> Path:
    """Train (or reuse) the model for this data and config; return its directory.

    `traffic`: labelled fan texts for the threshold (see `calibrate`). The model's directory
    stays named by data and config (a server finds it without knowing the labels); a model
    chosen with other labels is retrained in place. None: reuse whatever model exists.
    `beside`: files written into the model's folder before it is published (`store.save`).
    """
    fp = fingerprint(cfg, data)
    target = store.model_dir_for(out_dir, fp)
    if (
        not force
        and (target / "metadata.json").is_file()
        and (traffic is None or _trained_with(target) == traffic_fingerprint(traffic))
    ):
        return target
    started = time.perf_counter()
    model = build_model(cfg, data, progress=progress, traffic=traffic or ())
    model.metadata |= {
        "trained_at": datetime.now(UTC).isoformat(),
        "train_seconds": round(time.perf_counter() - started, 2),
        "config_source": cfg.source,
        "language": cfg.language,
        "assistant_id": cfg.assistant_id,
        "pipeline": [{"name": c.name, **c.options} for c in cfg.pipeline],
        "examples": len(data.examples),
        "intents": sorted(data.intents),
        "retrieval_intents": sorted(data.retrieval_intents),
    }
    model.metadata["threshold_data"]["traffic_fingerprint"] = traffic_fingerprint(traffic or ())
    model.fingerprint = fp
    saved = store.save(model, target, beside)
    store.prune(out_dir, keep=KEEP_MODELS)
    return saved


def _trained_with(model_dir: Path) -> str:
    meta = json.loads((model_dir / "metadata.json").read_text())
    return (meta.get("threshold_data") or {}).get("traffic_fingerprint", "")


@dataclass(slots=True)
class _Plan:
    """The pipeline's options, resolved once."""

    ngram_options: list[dict[str, Any]]
    embedding: dict[str, Any] | None
    classifier: dict[str, Any]
    fallback: dict[str, Any] | None
    regex: dict[str, Any] | None
    tagger: dict[str, Any] | None
    synonyms: bool

    @classmethod
    def of(cls, cfg: NluConfig) -> _Plan:
        def opts(name: str) -> dict[str, Any] | None:
            c = cfg.component(name)
            return dict(c.options) if c else None

        return cls(
            [dict(c.options) for c in cfg.pipeline if c.name == "CountVectorsFeaturizer"],
            opts("SentenceEmbeddingFeaturizer"),
            opts("LinearIntentClassifier") or {},
            opts("FallbackClassifier"),
            opts("RegexEntityExtractor"),
            opts("TokenEntityExtractor"),
            cfg.component("EntitySynonymMapper") is not None,
        )

    @property
    def top_k(self) -> int:
        return self.fallback["neighbour_top_k"] if self.fallback else DEFAULT_TOP_K

    @property
    def oos_intent(self) -> str:
        return self.fallback["intent"] if self.fallback else OUT_OF_SCOPE

    def uses(self, signal: str) -> bool:
        """Whether an evidence signal (per_intent, own_nearness, uncovered) is on."""
        return bool(self.fallback and self.fallback.get(signal, True))

    @property
    def weight(self) -> float:
        return self.fallback["neighbour_weight"] if self.fallback else 0.0


def build_model(
    cfg: NluConfig,
    data: TrainingData,
    *,
    progress: bool = False,
    embeddings: np.ndarray | None = None,
    traffic: Sequence[TrafficText] = (),
    smalltalk: bool = True,
) -> store.NluModel:
    """Fit every component; `embeddings` lets the benchmark reuse vectors it already has.

    `smalltalk`: the intents classify the engine's small talk too (`bot.nlu.smalltalk`, as
    every line's model does; False for a benchmark's own intents alone); entities are learnt
    from the line's own examples alone."""
    plan = _Plan.of(cfg)
    if len({e.intent for e in data.examples}) < 2:
        raise NluError("training needs at least two intents with examples")
    line, data = data, (add_smalltalk(data) if smalltalk else data)
    added = sorted({e.intent for e in data.examples} - {e.intent for e in line.examples})
    scored = len(data.examples)  # examples the calibration sees (not the background's)
    if plan.fallback and plan.fallback.get("background"):
        data = add_background(data, plan.oos_intent)
    texts = [e.text for e in data.examples]
    labels = [e.intent for e in data.examples]
    steps = tqdm(total=5, desc="training NLU", unit="step", disable=not progress, leave=False)
    with steps:
        if plan.embedding is not None and embeddings is None:
            steps.set_postfix_str("sentence embeddings")
            embeddings = embed(plan.embedding, texts)
        steps.update()
        steps.set_postfix_str("n-gram features")
        featurizers = [NgramFeaturizer.fit(o, texts) for o in plan.ngram_options]
        features = featurize([f for f, _ in featurizers], texts, embeddings)
        steps.update()
        steps.set_postfix_str("intent classifier + calibration")
        words = _CoverageData.of(data, plan)
        # The fits are independent and liblinear releases the GIL: two at a time, one per core.
        with ThreadPoolExecutor(max_workers=2) as pool:
            final = pool.submit(fit_linear, plan, features, labels)
            held = held_out_scores(plan, features, labels, pool, words, scored)
            steps.update()
            linear = final.result()
            steps.update()
        coverage = words.fit(range(len(texts))) if words else None
        scored = _score_traffic(plan, linear, featurizers, traffic) if held and traffic else None
        calibration = calibration_from(plan, held, scored)
        if added and coverage is not None:  # few, generic examples: only what they speak of
            calibration = replace(calibration, strict=frozenset(added))
        if calibration.unknown_words:
            calibration = replace(calibration, taught=taught_intents(line))
        steps.set_postfix_str("entities")
        tagger = TokenTagger.fit(line, plan.tagger) if plan.tagger else None
        steps.update()
    return store.NluModel(
        fingerprint="",
        featurizers=[f for f, _ in featurizers],
        embedding_options=plan.embedding,
        linear=linear,
        calibration=calibration,
        neighbour_weight=plan.weight,
        neighbour_top_k=plan.top_k,
        own_nearness=plan.uses("own_nearness"),
        coverage=coverage,
        oos_intent=plan.oos_intent,
        ranking_length=plan.classifier.get("ranking_length", 5),
        patterns=PatternExtractor.from_data(line, plan.regex) if plan.regex else None,
        tagger=tagger,
        synonyms=dict(data.synonyms) if plan.synonyms else None,
        metadata={"threshold_data": {
            "held_out": len(held[0]) if held else 0,
            "traffic": len(scored[0]) if scored else 0,
        }, "smalltalk": added},
    )  # fmt: skip


def taught_intents(data: TrainingData) -> frozenset[str]:
    """Intents taught from the inbox: their examples are in a `taught.yml` (bot/teach)."""
    return frozenset(
        e.intent
        for e in data.examples
        if e.location is not None and e.location.file.endswith(TAUGHT_NLU_FILE)
    )


def add_smalltalk(data: TrainingData) -> TrainingData:
    return shipped_smalltalk.with_smalltalk(data)


BACKGROUND = Path(__file__).parents[1] / "compliance" / "background" / "hwu64.txt"
BACKGROUND_SIZE = 1500  # at most this many ordinary texts join the out-of-scope class
# ... and at most this share of the line's own examples: on a small line (the demo: 833
# examples) 1,500 ordinary texts outweighed its intents, spread their confidences apart (the
# close call "songs on the tour" went: setlist 0.82 -> 0.63) and dropped the threshold to 0.17.
BACKGROUND_SHARE = 0.6


def add_background(data: TrainingData, oos_intent: str) -> TrainingData:
    """The line's data with ordinary texts (HWU64's sample, shared with the compliance model)
    as out-of-scope examples: only texts with a content word none of the line's intents
    speaks of ("you are great" could be the line's own compliment), a seeded sample."""
    from bot.nlu.data import Example

    if not BACKGROUND.is_file():
        return data
    texts = [t for t in BACKGROUND.read_text().splitlines() if t.strip() and not t.startswith("#")]
    line = Coverage.fit([e.text for e in data.examples], [e.intent for e in data.examples])
    known = set().union(*line.words.values()) if line.words else set()
    own = {e.text.strip().lower() for e in data.examples}
    kept = [
        t
        for t in texts
        if t.strip().lower() not in own and set(content_words(t)) - known - line.shared
    ]
    rng = np.random.default_rng(SEED)
    size = min(BACKGROUND_SIZE, int(BACKGROUND_SHARE * len(data.examples)))
    if len(kept) > size:
        kept = [kept[i] for i in sorted(rng.choice(len(kept), size, replace=False))]
    return replace(data, examples=data.examples + tuple(Example(t, oos_intent) for t in kept))


def embed(options: dict[str, Any], texts: list[str]) -> np.ndarray:
    from bot.nlu.embeddings import open_encoder

    encoder, identity = open_encoder(options, threads=0)  # a batch job: use every core
    options["model_sha256"] = identity
    return encoder.encode(texts, options["batch_size"])


def fit_linear(plan: _Plan, features: Features, labels: list[str]) -> LinearModel:
    return LinearModel.fit(
        features,
        labels,
        C=plan.classifier.get("C", 1.0),
        max_iter=plan.classifier.get("max_iter", 2000),
        embedding_weight=plan.embedding["weight"] if plan.embedding else 1.0,
        oos_intent=plan.oos_intent,
    )


@dataclass(frozen=True, slots=True)
class _CoverageData:
    """What the uncovered-word evidence is fitted from: the line's own examples, the texts
    each intent answers with, and words any intent may carry (lookups, synonyms, entities)."""

    texts: list[str]
    labels: list[str]
    responses: dict[str, list[str]]
    shared: tuple[str, ...]
    oos_intent: str

    @classmethod
    def of(cls, data: TrainingData, plan: _Plan) -> _CoverageData | None:
        if not plan.uses("uncovered"):
            return None
        responses = {
            e.intent: _response_texts(data.responses.get(f"utter_{e.intent}"))
            for e in data.examples
        }
        return cls(
            [e.text for e in data.examples],
            [e.intent for e in data.examples],
            {k: v for k, v in responses.items() if v},
            shared_values(data),
            plan.oos_intent,
        )

    def fit(self, idx) -> Coverage:
        return Coverage.fit(
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
            responses=self.responses,
            shared=self.shared,
            skip=[self.oos_intent],
        )


def shared_values(data: TrainingData) -> tuple[str, ...]:
    """Words any intent may carry: lookup tables, synonyms and annotated entity values. A value
    that is one token with digits is a code ("VALE-CREW-42"), not a name: its letters would
    make a topic word ("crew") every intent's; a date ("March 14 2004") names a month."""
    shared = [v for values in data.lookups.values() for v in values]
    shared += [*data.synonyms, *data.synonyms.values()]
    for example in data.examples:
        for ent in example.entities:
            value = str(ent.value or "")
            if value and not (any(c.isdigit() for c in value) and len(value.split()) == 1):
                shared.append(value)
    return tuple(shared)


def _response_texts(variations: Any) -> list[str]:
    """The `text:` of each variation of a response (Rasa's list of {text: ...} or strings)."""
    if not isinstance(variations, list):
        return []
    out = [v.get("text") if isinstance(v, dict) else v for v in variations]
    return [t for t in out if isinstance(t, str)]


def calibrate(
    plan: _Plan, features: Features, labels: list[str], pool: ThreadPoolExecutor | None = None
) -> Calibration:
    """Choose the out-of-scope threshold on out-of-fold scores (see `held_out_scores`)."""
    return calibration_from(plan, held_out_scores(plan, features, labels, pool), None)


def held_out_scores(
    plan: _Plan,
    features: Features,
    labels: list[str],
    pool: ThreadPoolExecutor | None = None,
    words: _CoverageData | None = None,
    scored: int | None = None,
) -> tuple | None:
    """(raw, correct, is_oos, k) of every example scored by a model fitted without it.

    As the CLINC150 protocol does: k = 1 / holdout folds, stratified. The protocol chooses its
    threshold on a validation set with a fifth as many in-scope texts as training and as many
    out-of-scope texts as training; weighing each out-of-scope text k times gives the pooled
    folds that shape (and training's scarce out-of-scope examples are all used, not a fifth of
    them). None without a FallbackClassifier or folds.
    """
    if plan.fallback is None:
        return None
    folds = fold_split(labels, plan.fallback["holdout"])
    if scored is not None:  # background texts train every fold but are never scored
        folds = [(train, held[held < scored]) for train, held in folds]
    if not folds:
        return None
    run = pool.submit if pool is not None else _now
    scored = [run(_score_fold, plan, features, labels, train, held, words) for train, held in folds]
    results = [f.result() for f in scored]
    raw, correct, is_oos, predicted, uncovered = (
        np.concatenate([r[i] for r in results]) for i in range(5)
    )
    return raw, correct, is_oos, len(folds), predicted, uncovered


def calibration_from(plan: _Plan, held, traffic) -> Calibration:
    """One Platt fit over the held-out folds; the threshold chosen on them and on the labelled
    fan texts (`traffic`: raw, correct, is_oos), each of which counts as much as one
    out-of-scope example (k): the threshold serves real traffic, and there labels are few."""
    if plan.fallback is None:
        return Calibration(threshold=0.0)
    fixed = plan.fallback["threshold"]
    if held is None:
        return Calibration(threshold=float(fixed) if fixed != "auto" else 0.0)
    raw, correct, is_oos, k, predicted, uncovered = held
    cal = fit_calibration(raw, correct, is_oos, oos_weight=k, extra=traffic, extra_weight=k)
    if fixed != "auto":
        cal = Calibration(cal.slope, cal.intercept, float(fixed))
    elif (cap := plan.fallback.get("max_threshold")) is not None and cal.threshold > cap:
        cal = replace(cal, threshold=float(cap))  # never stricter than the project asked
    if not (plan.uses("per_intent") or plan.uses("uncovered")):
        return replace(cal, unsupported=False)
    weights = np.where(is_oos, float(k), 1.0)
    offsets, uncovered_offset = evidence_offsets(
        cal.probability(raw), predicted, correct, is_oos, weights, cal.threshold,
        uncovered if plan.uses("uncovered") else None,
    )  # fmt: skip
    if not plan.uses("per_intent"):
        offsets = {}
    # questions with nothing specific beside an uncovered word (`Coverage.unsupported`): the
    # line's own folds cannot judge them (their examples lose words to the split), so an option
    return Calibration(
        cal.slope, cal.intercept, cal.threshold, offsets, uncovered_offset,
        unsupported=plan.uses("uncovered") and plan.uses("specific"),
        unknown_words=plan.uses("uncovered") and plan.uses("unknown_words"),
    )  # fmt: skip


def _score_traffic(plan: _Plan, linear: LinearModel, featurizers, traffic: Sequence[TrafficText]):
    """(raw, correct, is_oos) of labelled fan texts, scored by the model trained on all data.

    A verdict naming an intent the model does not know counts as one to escalate: answering
    it with any known intent would be wrong.
    """
    texts = [t.text for t in traffic]
    embeddings = embed(dict(plan.embedding), texts) if plan.embedding is not None else None
    features = featurize([f for f, _ in featurizers], texts, embeddings)
    raw, predicted, oos_wins = score_batch(
        linear, features, plan.oos_intent, plan.weight, plan.top_k, plan.uses("own_nearness")
    )
    known = set(linear.classes) - {plan.oos_intent}
    truth = np.array([t.intent if t.intent in known else "" for t in traffic], dtype=object)
    is_oos = truth == ""
    correct = (np.array(linear.classes, dtype=object)[predicted] == truth) & ~oos_wins
    return raw, correct & ~is_oos, is_oos


def _score_fold(
    plan: _Plan,
    features: Features,
    labels: list[str],
    train_idx,
    held_idx,
    words: _CoverageData | None = None,
):
    """(raw score, answered right, is out_of_scope, predicted intent, has uncovered words) of
    the held-out texts of one fold; the words' coverage is the training part's alone."""
    linear = fit_linear(plan, features.rows(train_idx), [labels[i] for i in train_idx])
    raw, predicted, oos_wins = score_batch(
        linear, features.rows(held_idx), plan.oos_intent, plan.weight, plan.top_k,
        plan.uses("own_nearness"),
    )  # fmt: skip
    truth = np.array([labels[i] for i in held_idx])
    is_oos = truth == plan.oos_intent
    names = np.array(linear.classes, dtype=object)[predicted]
    correct = (names == truth) & ~oos_wins
    uncovered = np.zeros(len(held_idx), bool)
    if words is not None:
        coverage = words.fit(train_idx)
        uncovered = np.array(
            [
                bool(coverage.uncovered(words.texts[i], n))
                for i, n in zip(held_idx, names, strict=True)
            ],
            bool,
        )
    return raw, correct, is_oos, names, uncovered


class _now:
    """A finished 'future' (calibration without a thread pool)."""

    def __init__(self, fn, *args):
        self._value = fn(*args)

    def result(self):
        return self._value


def fold_split(labels: list[str], holdout: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """k = round(1 / holdout) stratified folds as (train, held-out) index pairs.

    Each intent's examples are dealt round-robin in a seeded order; an intent with a single
    example is never held out (its model must know it). Folds whose training part would
    know fewer than two intents are dropped.
    """
    k = max(2, round(1 / holdout))
    rng = np.random.default_rng(SEED)
    fold_of = np.full(len(labels), -1)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    for label in sorted(by_label):
        idx = rng.permutation(by_label[label])
        if len(idx) >= 2:
            fold_of[idx] = np.arange(len(idx)) % k
    out = []
    for f in range(k):
        held = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        if len(held) and len({labels[i] for i in train}) >= 2:
            out.append((train, held))
    return out


def score_batch(
    linear: LinearModel,
    features: Features,
    oos_intent: str,
    weight: float,
    top_k: int,
    own_nearness: bool = False,
):
    """(raw score of the best in-scope intent, its class index, out_of_scope won) per text.

    `own_nearness`: closeness to the predicted intent's own examples (else to the nearest
    example of the top-k intents, whichever intent it belongs to)."""
    decisions = linear.decisions(features)
    oos_col = linear.classes.index(oos_intent) if oos_intent in linear.classes else None
    predicted, oos_wins = best_in_scope(decisions, oos_col)
    top = predicted[:, None] if own_nearness else linear.top_classes(decisions, top_k, oos_col)
    closeness = linear.closeness(features, top) if weight else np.zeros(len(features))
    raw = raw_scores(decisions, oos_col, closeness, weight)[np.arange(len(predicted)), predicted]
    return raw, predicted, oos_wins
