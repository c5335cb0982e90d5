"""Run the speed benchmarks and write the README's performance tables from what they print.

    python bench/report.py [--quick] [--write]

Runs bench/pipeline.py (1 and 32 fans at a time, and every text unique) and bench/load.py
(maximum and fixed rate over HTTP, then one number bursting), each as its own process, and
prints a Markdown section: the commit, the date, each run's machine baseline
(bench/baseline.py) and load, and one row per figure beside the aim of issue 17. `--write`
puts it into README.md between the `perf:begin` and `perf:end` markers. `--quick` runs
shorter versions (a smoke run: its figures are noisier and say so). Nothing else is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- perf:begin (bench/report.py writes this part) -->", "<!-- perf:end -->"
NUM = r"([\d,]+(?:\.\d+)?)"


@dataclass
class Run:
    """One benchmark process: its command, what it printed, the figures found in it."""

    name: str
    args: list[str]
    output: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return "python " + " ".join(self.args)

    def baseline(self) -> str:
        found = re.search(r"machine baseline: (python [\d.]+ ms, numpy [\d.]+ ms).*load ([\d.]+)",
                          self.output)  # fmt: skip
        return f"{found.group(1)}, load {found.group(2)}" if found else "not printed"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _grab(run: Run, key: str, pattern: str, group: int = 1) -> None:
    found = re.search(pattern, run.output)
    if found:
        run.figures[key] = _num(found.group(group))


def parse_pipeline(run: Run) -> None:
    line = rf"SQLite +pipeline: {NUM} turns, {NUM} turns/s, p50 {NUM} ms, p99 {NUM} ms, CPU {NUM}"
    found = re.search(line, run.output)
    if found:
        for key, i in (("tps", 2), ("p50", 3), ("p99", 4), ("cpu", 5)):
            run.figures[key] = _num(found.group(i))
    _grab(run, "compute", rf"NLU \+ flow engine: +{NUM} ms/turn")


def parse_load(run: Run) -> None:
    found = re.findall(rf"max throughput.*?: {NUM} turns in .*?: {NUM} turns/s, p50 {NUM} ms, "
                       rf"p99 {NUM} ms.*?errors {NUM}", run.output)  # fmt: skip
    if found:  # the last is the measured phase (the first is the warm-up)
        turns, tps, p50, p99, errors = found[-1]
        run.figures |= {"tps": _num(tps), "p50": _num(p50), "p99": _num(p99),
                        "errors": _num(errors)}  # fmt: skip
    _grab(run, "cpu", rf"CPU per turn .*?server {NUM} ms")
    found = re.search(rf"fixed rate {NUM}/s .*?: {NUM} turns/s, p50 {NUM} ms, p99 {NUM} ms",
                      run.output)  # fmt: skip
    if found:
        run.figures |= {"rate": _num(found.group(1)), "rate_held": _num(found.group(2)),
                        "rate_p50": _num(found.group(3)), "rate_p99": _num(found.group(4))}  # fmt: skip
    _grab(run, "rss", rf"server memory after the run: {NUM} MB")


def parse_burst(run: Run) -> None:
    pat = rf"p50 {NUM} s, p95 {NUM} s, max {NUM} s; errors {NUM}"
    for key, prefix in (("quiet", r"no burst: "), ("loud", r"bursts [\d,]+: "),
                        ("flood", r"acknowledged: ")):  # fmt: skip
        found = re.search(prefix + r"[\d,]+ answered, " + pat, run.output)
        if found:
            for name, i in (("p50", 1), ("p95", 2), ("max", 3), ("errors", 4)):
                run.figures[f"{key}_{name}"] = _num(found.group(i))
    _grab(run, "cpu", rf"{NUM} ms per burst text")


def runs(quick: bool) -> list[tuple[Run, object]]:
    py = "bench/pipeline.py"
    fans = "150" if quick else "500"
    load = ["--turns", "2000", "--max-seconds", "10", "--rate-seconds", "5"] if quick else [
        "--turns", "8000", "--rate-seconds", "10"]  # fmt: skip
    burst = "200" if quick else "1000"
    return [
        (Run("c1", [py, "--fans", fans, "--concurrency", "1"]), parse_pipeline),
        (Run("c32", [py, "--fans", fans, "--concurrency", "32"]), parse_pipeline),
        (
            Run("unique", [py, "--fans", fans, "--concurrency", "32", "--unique-texts"]),
            parse_pipeline,
        ),  # fmt: skip
        (
            Run(
                "load",
                ["bench/load.py", *load, "--fans", "2000", "--concurrency", "64", "--rate", "400"],
            ),
            parse_load,
        ),  # fmt: skip
        (
            Run(
                "burst",
                [
                    "bench/load.py",
                    "--burst",
                    burst,
                    "--rate",
                    "10",
                    "--rate-seconds",
                    "10" if quick else "20",
                ],
            ),
            parse_burst,
        ),  # fmt: skip
    ]


def execute(run: Run) -> None:
    print(f"running: {run.command}", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FANLINE_TEST_DATABASE_URL", None)  # SQLite only: the figures the aims speak of
    done = subprocess.run([sys.executable, *run.args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)  # fmt: skip
    run.output = done.stdout
    if done.returncode:
        run.output += f"\n(exit {done.returncode}) {done.stderr[-500:]}"


def _f(run: Run, key: str, fmt: str = "{:,.0f}") -> str:
    return fmt.format(run.figures[key]) if key in run.figures else "n/a"


def section(done: dict[str, Run], quick: bool) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    c1, c32, uniq, load, burst = (done[k] for k in ("c1", "c32", "unique", "load", "burst"))
    ms = "{:.2f}"
    rows = [
        ("in process, 1 fan at a time", c1.command,
         f"{_f(c1, 'tps')} turns/s, p50 {_f(c1, 'p50', ms)} ms, p99 {_f(c1, 'p99', ms)} ms, "
         f"CPU {_f(c1, 'cpu', ms)} ms/turn", ">= 1,000 turns/s, p99 < 10 ms"),
        ("in process, 32 at a time", c32.command,
         f"{_f(c32, 'tps')} turns/s, p50 {_f(c32, 'p50', ms)} ms, p99 {_f(c32, 'p99', ms)} ms, "
         f"CPU {_f(c32, 'cpu', ms)} ms/turn", ">= 1,500 turns/s"),
        ("in process, 32 at a time, every text unique", uniq.command,
         f"{_f(uniq, 'tps')} turns/s, p99 {_f(uniq, 'p99', ms)} ms, CPU {_f(uniq, 'cpu', ms)} "
         "ms/turn", ">= 400 turns/s"),
        ("HTTP, 64 concurrent fans", load.command,
         f"{_f(load, 'tps')} turns/s, p50 {_f(load, 'p50', '{:,.1f}')} ms, p99 "
         f"{_f(load, 'p99', '{:,.1f}')} ms, errors {_f(load, 'errors')}; server CPU "
         f"{_f(load, 'cpu', ms)} ms/turn, {_f(load, 'rss')} MB", ">= 800 turns/s, <= 1.2 ms/turn"),
        ("HTTP, fixed rate", load.command,
         f"{_f(load, 'rate')}/s asked, {_f(load, 'rate_held')}/s held, p50 "
         f"{_f(load, 'rate_p50', '{:,.1f}')} ms, p99 {_f(load, 'rate_p99', '{:,.1f}')} ms",
         "400/s held, p99 < 50 ms"),
        ("HTTP, other fans at 10/s while one number bursts", burst.command,
         f"p95 {_f(burst, 'quiet_p95', ms)} s alone, {_f(burst, 'loud_p95', ms)} s during the "
         f"burst (max {_f(burst, 'loud_max', ms)} s); the burst acknowledged: p95 "
         f"{_f(burst, 'flood_p95', ms)} s, errors {_f(burst, 'flood_errors')}; server CPU "
         f"{_f(burst, 'cpu', ms)} ms per burst text", "p95 < 2 s"),
    ]  # fmt: skip
    ran = {id(r) for r in done.values() if r.output}
    rows = [row for row, run in zip(rows, (c1, c32, uniq, load, load, burst), strict=True)
            if id(run) in ran]  # fmt: skip
    out = [
        BEGIN,
        f"Measured by `python bench/report.py{' --quick' if quick else ''}` on {when}, main at "
        f"{commit}{' (with uncommitted changes)' if dirty else ''}, SQLite, one server "
        f"process, on a {os.cpu_count()}-CPU machine."
        + (" Quick mode: short runs, noisier figures." if quick else ""),
        "Each run's machine baseline (bench/baseline.py: a fixed single-core workload; "
        "lower is faster) and load average, to compare figures across machines:",
        "",
        *[f"- `{r.command}`: {r.baseline()}" for r in done.values() if r.output],
        "",
        "| what | figures | aim (issue 17, 16) |",
        "| --- | --- | --- |",
        *[
            f"| {what} (`{cmd.removeprefix('python ')}`) | {figs} | {aim} |"
            for what, cmd, figs, aim in rows
        ],
        END,
    ]
    return "\n".join(out)


def write(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{README}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = readme.split(BEGIN, 1)
    README.write_text(head + text + rest.split(END, 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    ap.add_argument("--write", action="store_true", help="update README.md between the markers")
    ap.add_argument("--only", nargs="*", help="names of runs to do (c1 c32 unique load burst)")
    args = ap.parse_args()
    done: dict[str, Run] = {}
    for run, parse in runs(args.quick):
        if args.only and run.name not in args.only:
            continue
        execute(run)
        parse(run)  # type: ignore[operator]
        done[run.name] = run
    for name in ("c1", "c32", "unique", "load", "burst"):
        done.setdefault(name, Run(name, ["(not run)"]))
    text = section(done, args.quick)
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
