"""Reports: what broadcasts did, the line over time, flow funnels, top topics (issue 18).

Off the message path. The figures come from `storage/report_store.py` in one read-only unit of
work, run on a thread of its own rather than the database's writer thread: on SQLite a report
must not make fans' turns wait behind it (WAL lets it read beside the writer). The inbox shows
them as inline SVG (`inbox/report_pages.py`), `fanline report` as PNG and CSV (`report_cli.py`);
the pictures are drawn by `report_charts.py`, the tables here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from bot.audience.report_model import BroadcastReport, LineReport, SendFigures
from bot.storage import Database
from bot.storage import report_store as sql

WINDOW = timedelta(hours=24)  # replies, opt-outs and hand-offs after a fan's broadcast text
BROADCASTS = 5  # the newest broadcasts of the period shown in a line report
TOPICS = 10


def period(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` whole UTC days and today so far."""
    now = now or datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1), today + timedelta(days=1)


def line_report_sync(
    db: Database,
    days: int = 30,
    broadcast_id: int | None = None,
    now: datetime | None = None,
    window: timedelta = WINDOW,
) -> LineReport:
    now = now or datetime.now(UTC)
    since, until = period(days, now)

    def read(conn: Connection) -> LineReport:
        ids = [broadcast_id] if broadcast_id else sql.recent_broadcasts(conn, since, BROADCASTS)
        return LineReport(
            since=since, until=until, days=tuple(sql.days(conn, since, until)),
            funnels=tuple(sql.funnels(conn, since, until)),
            topics=tuple(sql.top_topics(conn, since, TOPICS)),
            broadcasts=tuple(sql.broadcast_report(conn, i, window, now) for i in ids),
        )  # fmt: skip

    return db.run_sync(read)


async def line_report(db: Database, days: int = 30, broadcast_id: int | None = None) -> LineReport:
    return await asyncio.to_thread(line_report_sync, db, days, broadcast_id)


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "-"


# ---- tables (CSV files, the page's tables) -------------------------------------------------


BROADCAST_COLUMNS = ("broadcast", "name", "variant", "winner", "sent", "delivered", "failed",
                     "skipped", "queued", "clicks", "ctr_pct", "replies", "reply_rate_pct",
                     "opt_outs", "hand_offs", "failed_by_code")  # fmt: skip


def broadcast_rows(reports: tuple[BroadcastReport, ...]) -> Iterator[tuple[Any, ...]]:
    for b in reports:
        for f in (b.total, *b.variants):
            yield _broadcast_row(b, f)


def _broadcast_row(b: BroadcastReport, f: SendFigures) -> tuple[Any, ...]:
    codes = " ".join(f"{code}:{n}" for code, n in f.failed_by_code.items())
    return (b.id, b.name, f.label, "yes" if f.winner else "", f.sent, f.delivered, f.failed,
            f.skipped, f.queued, f.clicks, round(100 * f.ctr, 2), f.replies,
            round(100 * f.reply_rate, 2), f.opt_outs, f.hand_offs, codes)  # fmt: skip


DAY_COLUMNS = ("day", "texts_in", "answered_by_bot", "hand_offs", "first_answer_median_min",
               "opt_ins", "opt_outs", "list_size")  # fmt: skip


def day_rows(report: LineReport) -> Iterator[tuple[Any, ...]]:
    for d in report.days:
        wait = d.first_answer_median_s
        yield (d.day.isoformat(), d.texts_in, d.answered_by_bot, d.hand_offs,
               "" if wait is None else round(wait / 60, 1), d.opt_ins, d.opt_outs,
               d.list_size)  # fmt: skip


FUNNEL_COLUMNS = ("flow", "step", "fans", "of_started_pct")


def funnel_rows(report: LineReport) -> Iterator[tuple[Any, ...]]:
    for f in report.funnels:
        for s in f.steps:
            share = round(100 * s.fans / f.started, 1) if f.started else ""
            yield (f.flow, s.step, s.fans, share)


TOPIC_COLUMNS = ("topic", "label", "texts", "status", "broadcast")


def topic_rows(report: LineReport) -> Iterator[tuple[Any, ...]]:
    for t in report.topics:
        yield (t.id, t.label, t.size, t.status, t.broadcast_id or "")


TABLES = {
    "broadcasts.csv": (BROADCAST_COLUMNS, lambda r: broadcast_rows(r.broadcasts)),
    "days.csv": (DAY_COLUMNS, day_rows),
    "funnels.csv": (FUNNEL_COLUMNS, funnel_rows),
    "topics.csv": (TOPIC_COLUMNS, topic_rows),
}
