"""Benchmark: false STOP / START / HELP on texts that ask for none of them (issue 15, item 1).

    python bench/false_triggers.py [--rasa DIR ...] [--clinc FILE] [--limit N] [--worst 10]

Step 3 of the message path (`bot.compliance.classify`, the real layer: keywords, typos, explicit
wording, the phrase model) run over ordinary texts as a subscribed fan's, and counted per corpus:
sure opt-outs, "Reply STOP?" asks, HELP by model, START by model, with the worst examples of
each kind. Every text here is a non-opt-out, so every decision counted is a false trigger.
Where the engine has a line's own phrase model (`bot.compliance.line`), each text is read with
the model of the line that would receive it: a Rasa project's (and a fixture's) with its own,
every other corpus with the demo line's; an older engine's one shipped model otherwise.

Corpora, reported in two blocks:
  dev       the demo's own training examples (data/*.yml), the Rasa test fixtures'
            (tests/fixtures/rasa/*/data) and CLINC150 test + oos_test (../shared/benchmarks/
            clinc150/, referenced by path, skipped when absent: its train split is a background
            other helpers may train on, so its test split is not held out);
  held-out  public real-user corpora in bench/data/public/*.txt (never trained on, never looked at
            while tuning) and every Rasa project given with --rasa DIR (its data/ examples; e.g.
            a checkout of RasaHQ/rasa-demo, GPL-3.0, so not copied here).
Texts that really ask to stop are left out where a corpus has them (CLINC150's `cancel` intent:
"please stop talking"; Rasa intents named stop/unsubscribe/opt_out), and so is a text that is
exactly a carrier keyword ("stop", "cancel"): the carriers' rules make it an opt-out.
Aims (the issue's): sure <= 0.1 %, asks <= 1 %, HELP / START by model <= 0.5 % each. No network;
about 15,000 texts, a minute or two.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bot import compliance  # noqa: E402
from bot.compliance.keywords import CARRIER_OPT_OUT, normalise  # noqa: E402
from bot.nlu.data import load_training_data  # noqa: E402

PUBLIC = ROOT / "bench" / "data" / "public"
CLINC = ROOT.parent / "shared" / "benchmarks" / "clinc150" / "data_full.json"
KINDS = ("sure", "asked", "help_model", "start_model")
AIMS = {"sure": 0.1, "asked": 1.0, "help_model": 0.5, "start_model": 0.5}  # at most, %
LABELS = {
    "sure": "sure opt-outs",
    "asked": '"Reply STOP?" asks',
    "help_model": "HELP by model",
    "start_model": "START by model",
}
_STOP_INTENT = re.compile(r"stop|unsubscri|opt_?out", re.I)


@dataclass
class Corpus:
    name: str
    split: str  # dev | held-out
    texts: list[str]
    note: str = ""
    data: Any = None  # the line's NLU data when the corpus is a line's own examples
    hits: dict[str, list[tuple[float, str, str]]] = field(default_factory=dict)


# ---- the corpora ------------------------------------------------------------------------------


def public_corpora() -> list[Corpus]:
    out = []
    for path in sorted(PUBLIC.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts = [t.strip() for t in lines if t.strip() and not t.startswith("#")]
        out.append(Corpus(path.stem, "held-out", texts, f"bench/data/public/{path.name}"))
    return out


def clinc_corpus(path: Path = CLINC) -> Corpus | None:
    if not path.is_file():
        print(f"NOTE: {path} not found: CLINC150 test skipped")
        return None
    data = json.loads(path.read_text())
    rows = data.get("test", []) + data.get("oos_test", [])
    texts = [t for t, intent in rows if intent != "cancel"]
    note = f"test + oos_test, {len(rows) - len(texts)} `cancel` texts left out"
    return Corpus("clinc150_test", "dev", texts, note)


def rasa_corpus(folder: Path, name: str, split: str) -> Corpus | None:
    data = folder / "data" if (folder / "data").is_dir() else folder
    try:
        examples = load_training_data([data]).examples
    except Exception as exc:  # a project our loader refuses is reported, not fatal
        print(f"NOTE: {folder}: cannot read its NLU data ({type(exc).__name__}: {exc})")
        return None
    left = sorted({e.intent for e in examples if _STOP_INTENT.search(e.intent)})
    texts = [e.text for e in examples if not _STOP_INTENT.search(e.intent)]
    note = f"{data}" + (f", intents left out: {', '.join(left)}" if left else "")
    return Corpus(name, split, texts, note, load_training_data([data]))


def corpora(rasa_dirs: list[Path], clinc: Path = CLINC) -> list[Corpus]:
    found = [rasa_corpus(ROOT, "demo_training", "dev")]
    for fixture in sorted((ROOT / "tests" / "fixtures" / "rasa").glob("*/data")):
        found.append(rasa_corpus(fixture.parent, f"fixture_{fixture.parent.name}", "dev"))
    found.append(clinc_corpus(clinc))
    found += public_corpora()
    for folder in rasa_dirs:
        found.append(rasa_corpus(folder, f"rasa_{folder.resolve().name}", "held-out"))
    return [c for c in found if c is not None and c.texts]


# ---- classify ---------------------------------------------------------------------------------


def line_model(data: Any) -> Any:
    """The line's own phrase model (trained now, a few seconds), or None on an older engine."""
    if "model" not in inspect.signature(compliance.classify).parameters:
        return None
    from bot.compliance import line

    return line.load_or_train(data, None)


def classify(text: str, model: Any = None) -> compliance.Decision | None:
    """The real layer, as for a subscribed fan (the only one an opt-out or HELP can harm)."""
    if model is None:
        return compliance.classify(text, subscription="subscribed")
    return compliance.classify(text, subscription="subscribed", model=model)


def kind_of(decision: compliance.Decision | None) -> str | None:
    if decision is None:
        return None
    if decision.kind == "opt_out":
        return "sure"
    if decision.kind == "confirm_opt_out":
        return "asked"
    if decision.keyword == "model" and decision.kind in ("help", "opt_in"):
        return "help_model" if decision.kind == "help" else "start_model"
    return None  # HELP / START keywords: the carriers' words, not a model's guess


def measure(corpus: Corpus, limit: int | None, model: Any = None) -> int:
    """Classify the corpus (every k-th text under --limit) with the phrase model of the line that
    receives it (None: the engine's default); returns how many texts were read."""
    texts = [t for t in corpus.texts if normalise(t) not in CARRIER_OPT_OUT]
    if limit and len(texts) > limit:
        texts = texts[:: max(1, len(texts) // limit)][:limit]
    corpus.hits = {k: [] for k in KINDS}
    for text in texts:
        decision = classify(text, model)
        kind = kind_of(decision)
        if kind and decision is not None:
            score = 1.0 if decision.score is None else float(decision.score)
            corpus.hits[kind].append((score, decision.keyword, text))
    return len(texts)


# ---- report -----------------------------------------------------------------------------------


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.2f} %" if total else "-"


def report(rows: list[tuple[Corpus, int]], worst: int) -> None:
    header = "corpus".ljust(30) + "texts".rjust(7) + "".join(LABELS[k].rjust(20) for k in KINDS)
    for split in ("dev", "held-out"):
        block = [(c, n) for c, n in rows if c.split == split]
        if not block:
            continue
        print(f"\n== {split} corpora\n{header}")
        for c, n in block:
            cells = "".join(_pct(len(c.hits[k]), n).rjust(20) for k in KINDS)
            print(c.name.ljust(30) + str(n).rjust(7) + cells)
        total = sum(n for _, n in block)
        cells = "".join(_pct(sum(len(c.hits[k]) for c, _ in block), total).rjust(20) for k in KINDS)
        print(f"all {split}".ljust(30) + str(total).rjust(7) + cells)
        print("aim".ljust(37) + "".join(f"<= {AIMS[k]:g} %".rjust(20) for k in KINDS))
    for c, n in rows:
        print(f"\n-- {c.name} ({c.split}, {n} texts; {c.note})")
        for k in KINDS:
            if c.hits[k]:
                print(f"  {LABELS[k]}: {len(c.hits[k])}, worst:")
                for score, keyword, text in sorted(c.hits[k], key=lambda h: -h[0])[:worst]:
                    print(f"    {score:.3f} {keyword:<8} {text[:100]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rasa", type=Path, action="append", default=[], help="a Rasa project")
    ap.add_argument("--clinc", type=Path, default=CLINC, help="CLINC150's data_full.json")
    ap.add_argument("--limit", type=int, help="at most N texts per corpus (a quick look)")
    ap.add_argument("--worst", type=int, default=10, help="examples shown per kind")
    args = ap.parse_args()
    print_baseline()
    extra = set(inspect.signature(compliance.classify).parameters) - {
        "text", "subscription", "opt_out_type", "asked", "model"
    }  # fmt: skip
    if extra:
        print(f"NOTE: classify also takes {sorted(extra)}: measured with their defaults")
    started = time.perf_counter()
    found = corpora(args.rasa, args.clinc)
    demo = next(c.data for c in found if c.name == "demo_training")
    models = {id(d): line_model(d) for d in {id(c.data): c.data for c in found if c.data}.values()}
    demo_model = models.get(id(demo))
    print(f"phrase models: {'each line its own' if demo_model is not None else 'the shipped one'}")
    rows = [
        (c, measure(c, args.limit, models.get(id(c.data), demo_model) if c.data else demo_model))
        for c in found
    ]
    report(rows, args.worst)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
