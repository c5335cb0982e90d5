"""bench/report.py reads the figures the benchmarks print and writes only between its markers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report  # noqa: E402

PIPELINE = """machine baseline: python 9.2 ms, numpy 4.5 ms (best of 9, one core; lower is faster), load 0.40 on 2 CPUs
NLU + flow engine:   0.374 ms/turn (2,672/s)
SQLite      pipeline: 2,400 turns, 1,236 turns/s, p50 0.79 ms, p99 1.44 ms, CPU 0.81 ms/turn (concurrency 1, 300 fans)
"""  # noqa: E501
LOAD = """machine baseline: python 9.3 ms, numpy 4.4 ms (best of 9, one core; lower is faster), load 1.10 on 2 CPUs
max throughput, 64 concurrent fans: 200 turns in 0.66s: 304 turns/s, p50 193.5 ms, p99 331.9 ms, max 332 ms; inline TwiML 100%; errors 0
max throughput, 64 concurrent fans: 8,000 turns in 9.17s: 872 turns/s, p50 66.4 ms, p99 131.0 ms, max 190 ms; inline TwiML 100%; errors 0
CPU per turn (independent of the machine's other load): server 1.09 ms, this load generator 1.14 ms
fixed rate 400/s for 10s: 4,000 turns in 10.01s: 400 turns/s, p50 3.1 ms, p99 21.0 ms, max 40 ms; inline TwiML 100%; errors 0
server memory after the run: 790 MB RSS
"""  # noqa: E501


def test_the_figures_are_read_from_what_the_benchmarks_print() -> None:
    pipe, load = report.Run("c1", ["bench/pipeline.py"], PIPELINE), report.Run("load", [], LOAD)
    report.parse_pipeline(pipe)
    report.parse_load(load)
    assert pipe.figures == {"tps": 1236, "p50": 0.79, "p99": 1.44, "cpu": 0.81, "compute": 0.374}
    assert pipe.baseline() == "python 9.2 ms, numpy 4.5 ms, load 0.40"
    assert load.figures["tps"] == 872 and load.figures["cpu"] == 1.09  # the measured phase
    assert (load.figures["rate_held"], load.figures["rate_p99"], load.figures["rss"]) == (
        400, 21.0, 790)  # fmt: skip


def test_only_the_part_between_the_markers_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    monkeypatch.setattr(report, "README", readme)
    report.write(f"{report.BEGIN}\nnew table\n{report.END}")
    assert (
        readme.read_text() == f"# Title\nbefore\n{report.BEGIN}\nnew table\n{report.END}\nafter\n"
    )
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        report.write("x")
