"""Benchmark: what bot/compliance costs per inbound text, and its start-up.

    python bench/compliance.py [--repeat 2000]

Prints the training cost of the demo line's phrase model (the shipped phrases, the HWU64
background and the line's NLU examples: what `fanline train` does), loading it back from the
model directory, loading the language model, and the per-text cost of `compliance.classify`
(with the line's model) for each path a text can take:
an exact keyword, a one-word typo, explicit wording, the phrase model on short and on long
texts (whole text plus clauses), and `language.identify`. Texts are written here (never from
bench/data/). Bounded: a fixed number of calls, in this process, no network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import print_baseline  # noqa: E402
from bot import compliance  # noqa: E402
from bot.compliance import language, line, phrases  # noqa: E402
from bot.nlu.data import load_training_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "exact keyword": ["STOP", "Stop!", "unsubscribe", "HELP"],
    "one-word typo": ["stahpp", "sotp", "unsubscibe", "halp"],
    "explicit wording": ["stop texting me", "please take my number off your list"],
    "model, short text": [
        "i'd rather not get these",
        "per favore niente più sms",
        "when is the tour",
    ],
    "model, long text": [
        "Hey! Loved the show in Austin last week, you were amazing, but honestly I get way "
        "too many texts from this number so could you please take me off the list? Thanks!",
        "omg the new single is on repeat, can't stop listening, when does the tour stop in "
        "denver and how much are the tickets going to be this time around?",
    ],
}
LANGUAGE_TEXTS = ["hola, me puedes contar algo de tu vida", "what do you think about the weather"]


def per_call_us(fn, texts: list[str], repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for i in range(repeat):
        text = texts[i % len(texts)]
        started = time.perf_counter()
        fn(text)
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print_baseline()
    started = time.perf_counter()
    import importlib

    for module in ("sklearn.feature_extraction.text", "sklearn.linear_model"):
        importlib.import_module(module)

    import_s = time.perf_counter() - started
    data = load_training_data([ROOT / "data"])
    started = time.perf_counter()
    model = line.train(data)
    train_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        fp = line.fingerprint(line.negatives(data))
        line.save(model, Path(folder), fp)
        size = sum(p.stat().st_size for p in Path(folder).iterdir()) / 1e6
        started = time.perf_counter()
        assert line.load(Path(folder), fp) is not None
        load_s = time.perf_counter() - started
    started = time.perf_counter()
    language.warm_up()
    shipped, background = len(phrases.load_phrases()), len(phrases.load_background())
    print(f"start-up: import scikit-learn {import_s:.2f} s; train the demo line's model on "
          f"{model.examples} texts ({shipped} shipped phrases, {background} background, "
          f"{len(data.examples)} line examples) {train_s:.2f} s; saved {size:.1f} MB, loaded in "
          f"{load_s:.2f} s; load py3langid {time.perf_counter() - started:.2f} s")  # fmt: skip
    compliance.warm_up()
    print(f"{'path':22} {'p50 µs':>9} {'p99 µs':>9}")
    for name, texts in CASES.items():
        p50, p99 = per_call_us(
            lambda t: compliance.classify(t, subscription="subscribed", model=model),
            texts,
            args.repeat,
        )
        print(f"{name:22} {p50:9.1f} {p99:9.1f}")
    p50, p99 = per_call_us(language.identify, LANGUAGE_TEXTS, args.repeat)
    print(f"{'language.identify':22} {p50:9.1f} {p99:9.1f}")


if __name__ == "__main__":
    main()
