"""The machine's baseline: a fixed single-core workload every benchmark prints beside its figures.

    python bench/baseline.py

Two small loops, each timed several times and the best kept (the least disturbed by other
jobs): pure Python (dict, string and integer work, the kind a turn does) and numpy (a matrix
product and a reduction, the kind the NLU does). Figures from two machines compare once each
is divided by its own baseline; on one machine, a baseline far above its usual value says
the machine was busy. `load` is the 1-minute load average when the figures were taken.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

REPEATS = 9


def _python_work() -> int:
    total, seen = 0, {}
    for i in range(40_000):
        key = f"fan{i % 997}"
        seen[key] = seen.get(key, 0) + i
        total += len(key) * (i & 7)
    return total + len(seen)


def _numpy_work(a: np.ndarray, b: np.ndarray) -> float:
    out = 0.0
    for _ in range(60):
        out += float((a @ b).sum())
    return out


def _best(fn: object, *args: object) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


@dataclass(frozen=True)
class Baseline:
    python_ms: float
    numpy_ms: float
    load: float
    cpus: int

    def line(self) -> str:
        return (
            f"machine baseline: python {self.python_ms:.1f} ms, numpy {self.numpy_ms:.1f} ms "
            f"(best of {REPEATS}, one core; lower is faster), load {self.load:.2f} on "
            f"{self.cpus} CPUs"
        )


def measure() -> Baseline:
    """About half a second of work on one core; the numpy loop on one thread, so the figure
    does not depend on how many cores BLAS finds free."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 384), dtype=np.float32)
    b = rng.standard_normal((384, 128), dtype=np.float32)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy's own BLAS threads then: still a fixed workload
        py, nump = _best(_python_work), _best(_numpy_work, a, b)
    else:
        with threadpool_limits(1):
            py, nump = _best(_python_work), _best(_numpy_work, a, b)
    return Baseline(py * 1e3, nump * 1e3, os.getloadavg()[0], os.cpu_count() or 1)


def print_baseline() -> Baseline:
    """Measure and print the baseline line (every benchmark calls this before its figures)."""
    b = measure()
    print(b.line(), flush=True)
    return b


if __name__ == "__main__":
    print_baseline()
