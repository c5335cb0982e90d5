"""Benchmark: the in-process pipeline on the demo fan line, many distinct fans at once.

    python bench/pipeline.py [--fans 500] [--turns-per-fan 6] [--concurrency 32] [--database-url URL]

Prints turns/s, p50/p99 latency and CPU time (every thread of this process) per turn for SQLite (a temp file) and, when a URL is given
(or FANLINE_TEST_DATABASE_URL is set), PostgreSQL. Beside them, the same kind of texts through
the NLU alone and through NLU + flow engine alone, in this process, as the baseline. By default
fans send the demo's few texts, which the NLU's parse cache answers after the first time;
`--unique-texts` makes every text new, as real traffic mostly is. FANLINE_NLU_PIPELINE=default
measures the scikit-learn-only pipeline instead of config.yml's. `--callgrind`, under
`valgrind --tool=callgrind --instr-atstart=no`, counts the instructions of the measured turns
alone: `--warmup-fans` other fans' turns run first (parse cache, first statements), then
instrumentation is switched on for the other fans' turns (callgrind_control -i), SQLite only.
Bounded: a fixed number of turns, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bot.flows import DialogueState, TurnInput  # noqa: E402
from bot.messages import InboundSms  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402

SCRIPT = ["hey!", "YES", "TOUR", "when does the presale start", "is there merch", "love you nova",
          "how much is shipping to canada", "thanks!!"]  # fmt: skip


WORDS = ["please", "today", "thanks", "nova", "tonight", "asap", "pls", "hey", "omg", "lol",
         "really", "again", "now", "soon", "guys", "team", "x", "love", "so", "ok"]  # fmt: skip


def body_for(i: int, step: int, unique: bool) -> str:
    """The fan's text; with `unique`, two extra words make every text new to the parse cache."""
    body = SCRIPT[step % len(SCRIPT)]
    if unique:
        body = f"{body} {WORDS[(i + step) % len(WORDS)]} x{i * 16 + step}"
    return body


async def run_backend(
    url: str,
    fans: int,
    per_fan: int,
    concurrency: int,
    unique: bool = False,
    callgrind: bool = False,
    warmup: int = 0,
) -> dict[str, float]:
    settings = load_settings(ROOT, env=_env(url))
    runtime = await Runtime.start(settings)
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one_fan(i: int) -> None:
        number = f"+1555{i:07d}"
        for step in range(per_fan):
            body = body_for(i, step, unique)
            async with sem:
                t0 = time.perf_counter()
                await runtime.handle(
                    InboundSms(f"SM{uuid.uuid4().hex}", number, "+15550100000", body)
                )
                latencies.append(time.perf_counter() - t0)

    if warmup:  # fans of their own, before the measured ones (their turns are not counted)
        await asyncio.gather(*(one_fan(fans + i) for i in range(warmup)))
        latencies.clear()
    _collect(callgrind, "on")
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_fan(i) for i in range(fans)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    _collect(callgrind, "off")
    await runtime.close()
    return _summary(latencies, wall) | {"cpu_ms": cpu / len(latencies) * 1000}


def _collect(callgrind: bool, state: str) -> None:
    if callgrind:
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip


def _env(url: str) -> dict[str, str]:
    env = {"FANLINE_DATABASE_URL": url, "FANLINE_SECRET_KEY": "bench"}
    if os.environ.get("FANLINE_NLU_PIPELINE"):  # default | accurate instead of config.yml's
        env["FANLINE_NLU_PIPELINE"] = os.environ["FANLINE_NLU_PIPELINE"]
    return env


def _summary(latencies: list[float], wall: float) -> dict[str, float]:
    q = statistics.quantiles(latencies, n=100)
    return {"turns": len(latencies), "tps": len(latencies) / wall,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}  # fmt: skip


async def compute_only(n: int, unique: bool = False) -> tuple[float, float]:
    """Per-turn cost of NLU alone and of NLU + flow engine, with no storage."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(ROOT, env=_env(f"sqlite:///{tmp}/x.db"))
        runtime = await Runtime.start(settings)
        texts = [body_for(i, i // len(WORDS), unique) for i in range(n)]
        t0 = time.perf_counter()
        for t in texts:
            runtime.interpreter.parse(t)
        nlu = (time.perf_counter() - t0) / n
        engine = runtime.pipeline.brain.engine
        texts = [body_for(i + n, i // len(WORDS), unique) for i in range(n)]  # new to the cache
        t0 = time.perf_counter()
        for t in texts:
            pred = runtime.interpreter.parse(t)
            engine.turn(
                DialogueState(),
                TurnInput(text=t, prediction=pred, fan={"subscription": "subscribed"}),
            )
        both = (time.perf_counter() - t0) / n
        await runtime.close()
    return nlu, both


def databases(database_url: str | None) -> Iterator[tuple[str, str]]:
    """SQLite in a temporary folder, then PostgreSQL in a throwaway schema when a URL is given
    (nothing else in that database is seen or touched): (name, URL) for each benchmark run."""
    with tempfile.TemporaryDirectory() as tmp:
        yield "SQLite", f"sqlite:///{tmp}/bench.db"
    if database_url:
        with scratch_schema(database_url, "bench") as url:
            yield "PostgreSQL", url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fans", type=int, default=500)
    ap.add_argument("--turns-per-fan", type=int, default=len(SCRIPT))
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    ap.add_argument("--unique-texts", action="store_true",
                    help="no two texts alike: every parse misses the NLU's cache")  # fmt: skip
    ap.add_argument("--callgrind", action="store_true",
                    help="count only the measured turns (under valgrind --instr-atstart=no); "
                    "SQLite only, no baseline or compute-alone figures")  # fmt: skip
    ap.add_argument("--warmup-fans", type=int, default=0,
                    help="fans whose turns run before the measured ones, not counted")  # fmt: skip
    args = ap.parse_args()
    both = 0.0
    if not args.callgrind:
        print_baseline()
        nlu, both = asyncio.run(compute_only(2000, args.unique_texts))
        print(f"NLU alone:           {nlu * 1e3:.3f} ms/turn ({1 / nlu:,.0f}/s)")
        print(f"NLU + flow engine:   {both * 1e3:.3f} ms/turn ({1 / both:,.0f}/s)")
    for name, url in databases(None if args.callgrind else args.database_url):
        r = asyncio.run(
            run_backend(url, args.fans, args.turns_per_fan, args.concurrency, args.unique_texts,
                        args.callgrind, args.warmup_fans)
        )  # fmt: skip
        print(f"{name:<11} pipeline: {r['turns']:,.0f} turns, {r['tps']:,.0f} turns/s, "
              f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"CPU {r['cpu_ms']:.2f} ms/turn (concurrency {args.concurrency}, {args.fans} fans"
              f"{', unique texts' if args.unique_texts else ''})")  # fmt: skip
        if both:
            print(
                f"            compute alone (NLU + engine) would allow {1 / both:,.0f} turns/s on one core"
            )


if __name__ == "__main__":
    main()
