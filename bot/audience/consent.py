"""The consent ledger, for audits: every opt-in, opt-out and re-subscribe, exported as CSV.

Off the message path: the pipeline and the signup page write the ledger (through the store);
this module reads it. Rows are immutable and kept after opt-out (erasure blanks only the IP and
user agent). The CSV export streams, so a ledger of millions of rows needs little memory.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.storage import Store
from bot.storage.fan_records import LEDGER_COLUMNS, FanRecords


async def history(store: Store, contact_id: int) -> list[dict[str, Any]]:
    """One fan's consent history, oldest first."""
    return await FanRecords(store).ledger(contact_id)


def write_csv(store: Store, out: TextIO, since: datetime | None = None) -> int:
    """Write the ledger as CSV (a header, then one line per event); return rows written.

    Synchronous on purpose: it runs in a thread or from the CLI, and streams from the database.
    """
    writer = csv.DictWriter(out, fieldnames=LEDGER_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in FanRecords(store).iter_ledger(since):
        row["at"] = row["at"].isoformat() if row.get("at") else ""
        writer.writerow({k: _cell(row.get(k)) for k in LEDGER_COLUMNS})
        count += 1
    return count


def export_csv(store: Store, path: Path, since: datetime | None = None) -> int:
    with path.open("w", encoding="utf-8", newline="") as out:
        return write_csv(store, out, since)


def _cell(value: Any) -> Any:
    # spreadsheet formula injection: a cell starting with = + - @ would run as a formula
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not value[1:2].isdigit():
        return "'" + value
    return "" if value is None else value
