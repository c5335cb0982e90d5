"""CLINC150 ("Full") benchmark of the shipped NLU pipelines, beside the paper's rows.

    python bench/nlu_clinc150.py [--configs default accurate] [--few-shot 10] [--json out.json]

Protocol (the dataset's README): train on `train` (+ `oos_train` as the out_of_scope intent),
choose the out-of-scope threshold on `val` + `oos_val` only, report on `test` + `oos_test`.
"Shipped threshold" is the one the model chose itself at training (what `fanline train`
ships, from out-of-fold scores of the training data alone), reported on the same test split.
Each configuration runs in its own process so peak memory is its own. Never run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bot.errors import Location  # noqa: E402
from bot.nlu.config import shipped_config  # noqa: E402
from bot.nlu.data import OUT_OF_SCOPE, Example, TrainingData  # noqa: E402
from bot.nlu.evaluate import in_scope_accuracy_at_recall, predict_batch, report  # noqa: E402
from bot.nlu.fallback import choose_threshold  # noqa: E402
from bot.nlu.interpreter import load_interpreter  # noqa: E402
from bot.nlu.model import save  # noqa: E402
from bot.nlu.train import build_model  # noqa: E402

# shared/ sits beside the repository (or beside the folder of worktrees)
DATA = next(
    (
        p / "shared" / "benchmarks" / "clinc150" / "data_full.json"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "benchmarks" / "clinc150").is_dir()
    ),
    ROOT.parent / "shared" / "benchmarks" / "clinc150" / "data_full.json",
)
PAPER = [
    ("Rasa NLU (paper)", 90.9, 31.2),
    ("DialogFlow (paper)", 90.8, 26.7),
    ("MLP on USE (paper)", 93.4, 49.1),
    ("BERT fine-tuned (paper)", 96.2, 52.3),
]
LATENCY_SAMPLE = 1000


def split(raw: dict, name: str, oos_name: str) -> tuple[list[str], list[str]]:
    rows = raw[name] + [[t, OUT_OF_SCOPE] for t, _ in raw[oos_name]]
    return [t for t, _ in rows], [OUT_OF_SCOPE if i == "oos" else i for _, i in rows]


def training_data(texts: list[str], labels: list[str]) -> TrainingData:
    where = Location("clinc150/data_full.json")
    return TrainingData(
        examples=tuple(Example(t, i, (), where) for t, i in zip(texts, labels, strict=True))
    )


def few_shot(texts: list[str], labels: list[str], per_intent: int) -> tuple[list[str], list[str]]:
    """A fixed sample: the first `per_intent` examples of each intent in a seeded shuffle."""
    rng = np.random.default_rng(150)
    order = rng.permutation(len(texts))
    taken: dict[str, int] = {}
    keep = []
    for i in order:
        if taken.get(labels[i], 0) < per_intent:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            keep.append(i)
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


SIGNALS = ("per_intent", "own_nearness", "uncovered")  # evidence signals (docs/nlu.md)


def with_signals_off(cfg, off: list[str]):
    """The config with these evidence signals of the FallbackClassifier switched off and all
    the others on (whatever the shipped defaults), so rows compare with "all on"."""

    return with_options(cfg, {signal: signal not in off for signal in SIGNALS})


def with_options(cfg, values: dict):
    """The config with these options set on its FallbackClassifier."""
    from dataclasses import replace

    from bot.nlu.config import Component

    return replace(
        cfg,
        pipeline=tuple(
            Component(c.name, {**c.options, **values}) if c.name == "FallbackClassifier" else c
            for c in cfg.pipeline
        ),
    )


def run_one(config: str, per_intent: int | None, off: list[str] = (), on: list[str] = ()) -> dict:
    raw = json.loads(DATA.read_text())
    train_x, train_y = split(raw, "train", "oos_train")
    if per_intent:
        train_x, train_y = few_shot(train_x, train_y, per_intent)
    val_x, val_y = split(raw, "val", "oos_val")
    test_x, test_y = split(raw, "test", "oos_test")
    # "shipped": the configuration as it ships (own_nearness off); else all signals on but `off`
    shipped = list(off) == ["shipped"]
    cfg = shipped_config(config) if shipped else with_signals_off(shipped_config(config), list(off))
    if on:  # switched on over either (e.g. background, which ships off)
        cfg = with_options(cfg, {signal: True for signal in on})

    started = time.perf_counter()
    model = build_model(cfg, training_data(train_x, train_y), smalltalk=False)
    train_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        save(model, Path(tmp) / "model")
        t0 = time.perf_counter()
        interp = load_interpreter(Path(tmp) / "model")
        load_seconds = time.perf_counter() - t0

    val = predict_batch(interp, val_x)
    val_truth = np.array(val_y, dtype=object)
    correct = (np.array(val.best, dtype=object) == val_truth) & ~val.oos_wins
    threshold = choose_threshold(val.confidence, correct, val_truth == OUT_OF_SCOPE)
    test = predict_batch(interp, test_x)
    rep = report(test, test_y, threshold, OUT_OF_SCOPE)
    # what `fanline train` ships: the threshold the model chose itself, on its training data only
    shipped = report(test, test_y, model.calibration.threshold, OUT_OF_SCOPE)
    at90 = in_scope_accuracy_at_recall(test, test_y, OUT_OF_SCOPE, 0.9)

    tuned = interp.with_threshold(threshold)
    for text in val_x[:50]:
        tuned.parse(text)  # warm up numpy and onnxruntime on texts that are not timed
    sample = test_x[:: max(1, len(test_x) // LATENCY_SAMPLE)][:LATENCY_SAMPLE]
    uncached = _latencies(tuned, sample)  # distinct texts: every parse misses the cache
    cached = _latencies(tuned, sample)  # the same texts again: what repeated fan texts cost
    is_in = np.array(test_y, dtype=object) != OUT_OF_SCOPE
    top1 = (np.array(test.best, dtype=object) == np.array(test_y, dtype=object))[is_in].mean()
    return {
        "config": config
        + (f" ({per_intent}/intent)" if per_intent else "")
        + ("" if shipped else f", {'+'.join(off)} off" if off else ", all signals on")
        + (f", {'+'.join(on)} on" if on else ""),
        "in_scope": rep.in_scope_accuracy * 100,
        "oos_recall": (rep.oos_recall or 0) * 100,
        "auroc": rep.auroc,
        "in_scope_at_90": at90 * 100,
        "threshold": threshold,
        "internal_threshold": model.calibration.threshold,
        "shipped_in_scope": shipped.in_scope_accuracy * 100,
        "shipped_oos_recall": (shipped.oos_recall or 0) * 100,
        "train_s": train_seconds,
        "load_s": load_seconds,
        "top1": float(top1) * 100,
        "p50_ms": statistics.median(uncached),
        "p99_ms": uncached[int(len(uncached) * 0.99) - 1],
        "cached_p50_us": statistics.median(cached) * 1000,
        "load_avg": os.getloadavg()[0],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _latencies(interp, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        t0 = time.perf_counter()
        interp.parse(text)
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def table(rows: list[dict]) -> str:
    head = (
        "| classifier | in-scope acc. | out-of-scope recall | shipped threshold: in-scope / recall "
        "| AUROC | in-scope @ 90 % oos recall "
        "| top-1 (nothing escalated) | training | load | p50 / p99 per text | cached p50 "
        "| peak memory |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for name, acc, rec in PAPER:
        lines.append(f"| {name} | {acc:.1f} | {rec:.1f} | | | | | | | | | |")
    for r in rows:
        lines.append(
            f"| Fanline `{r['config']}` | {r['in_scope']:.1f} | {r['oos_recall']:.1f} | "
            f"{r['shipped_in_scope']:.1f} / {r['shipped_oos_recall']:.1f} "
            f"(t {r['internal_threshold']:.3f} vs {r['threshold']:.3f}) | "
            f"{r['auroc']:.3f} | {r['in_scope_at_90']:.1f} | {r['top1']:.1f} | "
            f"{r['train_s']:.1f} s | {r['load_s']:.2f} s | "
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms | {r['cached_p50_us']:.0f} µs | "
            f"{r['peak_mb']:.0f} MB |"
        )
    loads = ", ".join(f"{r['load_avg']:.1f}" for r in rows)
    lines.append(f"\n1-minute load average during each run: {loads} ({os.cpu_count()} cores)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["default", "accurate"])
    parser.add_argument(
        "--few-shot", type=int, default=10, help="also run N examples/intent (0: skip)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--off",
        nargs="*",
        default=None,
        metavar="SIGNAL",
        help=f"all evidence signals on but these ({', '.join(SIGNALS)}, or all); without "
        "--off: the configuration as shipped (docs/nlu.md's ablation table: --ablate)",
    )
    parser.add_argument(
        "--ablate", action="store_true", help="each signal off in turn, then all off"
    )
    parser.add_argument(
        "--on",
        nargs="*",
        default=[],
        metavar="SIGNAL",
        help="evidence signals switched on over the rows' configurations (background)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: config:per_intent:off:on
    args = parser.parse_args()
    print_baseline()
    if args.one:
        config, per, off, on = (args.one.split(":") + ["", "", ""])[:4]
        per_intent = int(per) if per else None
        signals = [[o for o in part.split("+") if o] for part in (off, on)]
        print(json.dumps(run_one(config, per_intent, *signals)))
        return 0
    off = ["shipped"] if args.off is None else list(SIGNALS) if "all" in args.off else args.off
    offs = [[], *[[s] for s in SIGNALS], list(SIGNALS)] if args.ablate else [off]
    on = "+".join(args.on)
    jobs = [f"{c}::{'+'.join(o)}:{on}" for o in offs for c in args.configs] + (
        [f"{c}:{args.few_shot}:{'+'.join(off)}:{on}" for c in args.configs] if args.few_shot else []
    )
    rows = []
    for job in jobs:
        out = subprocess.run(
            [sys.executable, __file__, "--one", job], capture_output=True, text=True
        )
        if out.returncode != 0:
            print(f"{job} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
