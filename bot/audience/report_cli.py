"""`fanline report [--days 30] [--broadcast N] --out DIR`: the reports as CSV files and PNG
charts, the same figures as the inbox's Reports page. No phone numbers or message bodies: fans
are counted, never named."""

from __future__ import annotations

import argparse
import csv
import re
from datetime import timedelta
from pathlib import Path
from typing import Any


def register_report(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="reports as CSV and PNG: broadcasts, the line per day, flow funnels, topics"
    )
    p.add_argument("--days", type=int, default=30, help="the last N days, today included")
    p.add_argument("--broadcast", type=int, metavar="N",
                   help="this broadcast only (default: the period's newest five)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write to")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from bot.audience import report_charts, reports
    from bot.errors import ConfigError, Location
    from bot.settings import load_settings
    from bot.storage import Database

    if not 1 <= args.days <= 3660:
        raise ConfigError("--days must be between 1 and 3660", Location("command line", None,
                                                                        "--days"))  # fmt: skip
    settings = load_settings(args.project)
    db = Database(settings.database_url)
    try:
        db.migrate()
        window = timedelta(hours=settings.reply_window_h)
        report = reports.line_report_sync(db, args.days, args.broadcast, window=window)
    finally:
        db.close()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, (columns, rows) in reports.TABLES.items():
        with (out / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(rows(report))
    written = list(reports.TABLES)
    for stem, _title, make in report_charts.charts(report):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) + ".png"
        (out / name).write_bytes(report_charts.render(make(), "png"))
        written.append(name)
    _summary(report)
    print(f"wrote {len(written)} files to {out}: {', '.join(written)}")
    return 0


def _summary(report: Any) -> None:
    from bot.audience.reports import pct

    print(f"{report.since:%Y-%m-%d} to {report.until - timedelta(days=1):%Y-%m-%d} (UTC)")
    for b in report.broadcasts:
        f = b.total
        print(f"broadcast {b.id} {b.name!r}: sent {f.sent:,}, delivered {f.delivered:,}, "
              f"failed {f.failed:,}, skipped {f.skipped:,}; clicks {f.clicks:,} "
              f"(CTR {pct(f.clicks, f.reached)}), replies {f.replies:,} "
              f"({pct(f.replies, f.reached)}), opt-outs {f.opt_outs:,}, "
              f"hand-offs {f.hand_offs:,} within {b.window_h} h")  # fmt: skip
        for v in b.variants:
            print(f"  variant {v.label}{' (winner)' if v.winner else ''}: sent {v.sent:,}, "
                  f"CTR {pct(v.clicks, v.reached)}, replies {pct(v.replies, v.reached)}")  # fmt: skip
    texts = sum(d.texts_in for d in report.days)
    by_bot = sum(d.answered_by_bot for d in report.days)
    last = report.days[-1].list_size if report.days else 0
    print(f"texts in {texts:,}, answered by the bot {pct(by_bot, texts)}, hand-offs "
          f"{sum(d.hand_offs for d in report.days):,}, list size {last:,}")  # fmt: skip
