"""`fanline train` and `fanline test nlu`: the NLU side of the command line (wired in bot/cli.py).

Content time only. Both print readable reports and return an exit code: 0 ok, 1 failed
(e.g. a broken model), 2 for content errors (ConfigError, with file:line).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ConfigError, NluError
from bot.nlu.config import project_config
from bot.nlu.data import TrainingData, load_training_data
from bot.nlu.evaluate import BatchResult, Report, concat, predict_batch, report
from bot.nlu.interpreter import Interpreter, load_interpreter
from bot.nlu.model import model_dir_for
from bot.nlu.train import SEED, TrafficText, build_model, fingerprint, train


def train_command(
    project_dir: Path,
    config_path: Path,
    out_dir: Path,
    force: bool = False,
    pipeline: str | None = None,
    traffic: Sequence[TrafficText] | None = None,
    beside: Callable[[Any, Path], Any] | None = None,
) -> int:
    """`pipeline` (FANLINE_NLU_PIPELINE): a shipped pipeline instead of config.yml's.

    `beside(data, folder)`: writes files into the model's folder before it is published (the
    line's compliance phrase model: a server polling for models never sees one without it).

    `traffic`: agents' labelled fan texts from the database (None: no database), real-traffic
    data for the out-of-scope threshold (`bot.nlu.train.calibration_from`)."""
    try:
        cfg = project_config(config_path, pipeline)
        for note in cfg.notes:
            print(f"note: {note}", file=sys.stderr)
        data = load_training_data([project_dir / "data"])
        for warning in data.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        existing = model_dir_for(out_dir, fingerprint(cfg, data))
        stamp = existing / "metadata.json"
        before = stamp.stat().st_mtime_ns if stamp.is_file() else None
        extra = (lambda folder: beside(data, folder)) if beside else None
        model_dir = train(
            cfg, data, out_dir, progress=True, force=force, traffic=traffic, beside=extra
        )
        reused = before is not None and stamp.stat().st_mtime_ns == before
        interp = load_interpreter(model_dir)
    except ConfigError as exc:
        _print_errors(exc)
        return 2
    except NluError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    meta = interp.metadata
    print(f"{'unchanged, reusing' if reused else 'trained'} model {model_dir}")
    print(f"  pipeline: {pipeline or cfg.source} ({_pipeline_summary(cfg)})")
    print(
        f"  {meta['examples']} examples, {len(meta['intents'])} intents, "
        f"{len(meta['retrieval_intents'])} retrieval intents, trained in {meta['train_seconds']} s"
    )
    print(f"  out-of-scope threshold {interp.threshold:.3f}{_threshold_origin(cfg, meta)}")
    if evidence := _evidence_summary(interp.model):
        print(f"  evidence: {evidence}")
    return 0


def _evidence_summary(model) -> str:
    """What the evidence asks for beyond the threshold (docs/nlu.md, "Evidence")."""
    cal, parts = model.calibration, []
    if cal.offsets:
        top = sorted(cal.offsets.items(), key=lambda kv: -kv[1])[:3]
        shown = ", ".join(f"{k} +{v:.2f}" for k, v in top)
        parts.append(
            f"higher bars for {len(cal.offsets)} intents ({shown}{', ...' if len(cal.offsets) > 3 else ''})"
        )
    if model.coverage is not None:
        parts.append(f"uncovered words +{cal.uncovered_offset:.2f}")
        if cal.unsupported:
            parts.append("questions with nothing specific handed over")
        if cal.unknown_words:
            parts.append("questions about what the line never speaks of handed over")
    if added := model.metadata.get("smalltalk"):
        parts.append(f"small talk added: {', '.join(added)}")
    return "; ".join(parts)


def _threshold_origin(cfg, meta: dict) -> str:
    fallback = cfg.component("FallbackClassifier")
    if fallback is None:
        return " (no FallbackClassifier in the pipeline: nothing is escalated as out of scope)"
    cap = fallback.options.get("max_threshold")
    if fallback.options["threshold"] == "auto" and cap is not None:
        return f" (calibrated on held-out examples, at most max_threshold {cap} in {cfg.source})"
    if fallback.options["threshold"] == "auto":
        used = meta.get("threshold_data") or {}
        if not used.get("held_out"):
            return " (calibrated on held-out examples)"
        if not used.get("traffic"):
            return f" from {used['held_out']} held-out examples (calibrated on held-out examples)"
        texts = "text" if used["traffic"] == 1 else "texts"
        return (f" from {used['held_out']} held-out examples + {used['traffic']} labelled fan "
                f"{texts} (calibrated on held-out examples and real traffic)")  # fmt: skip
    return f" (fixed in {cfg.source}; `threshold: auto` would calibrate it on held-out examples)"


def _print_errors(exc: ConfigError) -> None:
    for problem in getattr(exc, "problems", None) or [exc]:
        print(f"{'warning' if problem.warning else 'error'}: {problem}", file=sys.stderr)


def test_command(
    project_dir: Path,
    config_path: Path,
    out_dir: Path,
    folds: int | None = None,
    split: float | None = None,
    test_files: list[Path] | None = None,
    pipeline: str | None = None,
) -> int:
    """Cross-validation (`folds`, default 5), one held-out split (`split`, e.g. 0.2), or a model
    trained on data/ scored on `test_files` (Rasa's `rasa test nlu --nlu FILE`)."""
    try:
        cfg = project_config(config_path, pipeline)
        data = load_training_data([project_dir / "data"])
        if test_files:
            files = [f if f.exists() or f.is_absolute() else project_dir / f for f in test_files]
            method = f"trained on data/, tested on {', '.join(str(f) for f in files)}"
            result, truth, predicted, threshold = _on_files(cfg, data, files)
        elif split:
            method = "held-out split"
            result, truth, predicted, threshold = _held_out(cfg, data, split)
        else:
            method = f"{folds or 5}-fold cross-validation"
            result, truth, predicted, threshold = _cross_validate(cfg, data, folds or 5)
    except ConfigError as exc:
        _print_errors(exc)
        return 2
    except NluError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    oos = _oos_intent(cfg)
    rep = report(result, truth, threshold, oos, predicted)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(format_report(rep, method))
    _write_outputs(rep, truth, predicted, out_dir)
    return 0


def _pipeline_summary(cfg) -> str:
    names = [c.name for c in cfg.pipeline]
    return "with sentence embeddings" if "SentenceEmbeddingFeaturizer" in names else "n-grams"


def _oos_intent(cfg) -> str:
    fallback = cfg.component("FallbackClassifier")
    return fallback.options["intent"] if fallback else "out_of_scope"


def _folds(data: TrainingData, k: int) -> list[np.ndarray]:
    """Stratified fold index per example: each intent's examples dealt round-robin."""
    rng = np.random.default_rng(SEED)
    fold_of = np.zeros(len(data.examples), dtype=int)
    by_intent: dict[str, list[int]] = {}
    for i, e in enumerate(data.examples):
        by_intent.setdefault(e.intent, []).append(i)
    for intent in sorted(by_intent):
        idx = rng.permutation(by_intent[intent])
        fold_of[idx] = np.arange(len(idx)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def _subset(data: TrainingData, idx: np.ndarray) -> TrainingData:
    return TrainingData(
        examples=tuple(data.examples[i] for i in idx),
        synonyms=data.synonyms,
        regexes=data.regexes,
        lookups=data.lookups,
    )


def _evaluate_fold(cfg, data: TrainingData, train_idx, test_idx):
    interp = Interpreter(build_model(cfg, _subset(data, train_idx)))
    texts = [data.examples[i].text for i in test_idx]
    result = predict_batch(interp, texts)
    return result, result.predicted(interp.threshold, interp.model.oos_intent), interp.threshold


def _cross_validate(cfg, data: TrainingData, k: int):
    if k < 2:
        raise ConfigError("cross-validation needs at least 2 folds")
    folds = _folds(data, k)
    results: list[BatchResult] = []
    truth: list[str] = []
    predicted: list[str] = []
    thresholds = []
    for f in range(k):
        test_idx = folds[f]
        train_idx = np.concatenate([folds[g] for g in range(k) if g != f])
        result, pred, threshold = _evaluate_fold(cfg, data, train_idx, test_idx)
        results.append(result)
        predicted += pred
        truth += [data.examples[i].intent for i in test_idx]
        thresholds.append(threshold)
    return concat(results), truth, predicted, float(np.mean(thresholds))


def _on_files(cfg, data: TrainingData, files: list[Path]):
    tests = load_training_data(files)
    if not tests.examples:
        raise ConfigError(f"no NLU examples in {', '.join(str(f) for f in files)}")
    interp = Interpreter(build_model(cfg, data))
    result = predict_batch(interp, [e.text for e in tests.examples])
    predicted = result.predicted(interp.threshold, interp.model.oos_intent)
    return result, [e.intent for e in tests.examples], predicted, interp.threshold


def _held_out(cfg, data: TrainingData, fraction: float):
    if not 0 < fraction < 1:
        raise ConfigError("--split must be between 0 and 1 (the share of examples held out)")
    k = max(2, round(1 / fraction))
    folds = _folds(data, k)
    train_idx = np.concatenate(folds[1:])
    result, predicted, threshold = _evaluate_fold(cfg, data, train_idx, folds[0])
    return result, [data.examples[i].intent for i in folds[0]], predicted, threshold


def format_report(rep: Report, method: str) -> str:
    lines = [f"NLU evaluation ({method}, {rep.examples} examples)"]
    lines.append(f"  accuracy            {rep.accuracy:7.1%}")
    lines.append(f"  in-scope accuracy   {rep.in_scope_accuracy:7.1%}")
    if rep.oos_recall is not None:
        lines.append(
            f"  out-of-scope recall {rep.oos_recall:7.1%}   (out-of-scope texts escalated)"
        )
    if rep.auroc is not None:
        lines.append(f"  AUROC in/out scope  {rep.auroc:7.3f}")
    lines.append(f"  threshold           {rep.threshold:7.3f}")
    lines.append("")
    lines.append(f"  {'intent':32s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'n':>5s}")
    for s in sorted(rep.per_intent, key=lambda s: s.f1):
        lines.append(
            f"  {s.intent:32s} {s.precision:9.2f} {s.recall:7.2f} {s.f1:6.2f} {s.support:5d}"
        )
    if rep.confused:
        lines.append("")
        lines.append("  most confused (true -> predicted: count)")
        for true, pred, n in rep.confused:
            lines.append(f"    {true} -> {pred}: {n}")
    return "\n".join(lines)


def _write_outputs(rep: Report, truth: list[str], predicted: list[str], out_dir: Path) -> None:
    from bot.nlu.plots import confusion_png, histogram_png

    payload = asdict(rep)
    (out_dir / "nlu_report.json").write_text(json.dumps(payload, indent=2, default=float))
    pictures = [
        confusion_png(truth, predicted, out_dir / "nlu_confusion.png"),
        histogram_png(rep, out_dir / "nlu_confidence.png"),
    ]
    print("")
    print(f"  report: {out_dir / 'nlu_report.json'}")
    for picture in pictures:
        if picture is None:
            print("  (install matplotlib for the confusion and confidence pictures)")
            break
        print(f"  picture: {picture}")
