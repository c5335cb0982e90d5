"""The inbox's charts are drawn in a child process, never in the server's (matplotlib holds the
GIL while it draws), and the same figures are drawn once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

from bot.audience import report_charts
from bot.audience.chart_pool import ChartPool
from bot.audience.report_model import Day, LineReport
from tests.conftest import ROOT

DRAW_IN_A_CHILD = """
import asyncio, sys
from datetime import UTC, date, datetime
from bot.audience.chart_pool import ChartPool
from bot.audience.report_model import Day, LineReport

async def main():
    pool = ChartPool()
    report = LineReport(since=datetime(2027, 1, 1, tzinfo=UTC), until=datetime(2027, 1, 3, tzinfo=UTC),
                        days=(Day(day=date(2027, 1, 1), list_size=3, texts_in=2),), funnels=(), topics=())
    charts = await pool.draw(report)
    await pool.aclose()
    print(sorted(charts), "matplotlib" in sys.modules)

asyncio.run(main())
"""


def test_the_server_process_never_loads_matplotlib() -> None:
    done = subprocess.run(
        [sys.executable, "-c", DRAW_IN_A_CHILD], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['first-answer', 'list', 'texts-per-day'] False"


def _report(texts_in: int) -> LineReport:
    return LineReport(
        since=datetime(2027, 1, 1, tzinfo=UTC), until=datetime(2027, 1, 3, tzinfo=UTC),
        days=(Day(day=date(2027, 1, 1), list_size=3, texts_in=texts_in),), funnels=(), topics=(),
    )  # fmt: skip


async def test_the_same_figures_are_drawn_once() -> None:
    pool = ChartPool(keep=1)
    try:
        first, again = await pool.draw(_report(2)), await pool.draw(_report(2))
        assert first == again == report_charts.svgs(_report(2)) and pool.drawings == 1
        other = await pool.draw(_report(5))  # other figures: drawn
        assert other != first and pool.drawings == 2
        await pool.draw(_report(2))  # kept one report only: drawn again
        assert pool.drawings == 3
    finally:
        await pool.aclose()
