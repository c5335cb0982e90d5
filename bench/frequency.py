"""The frequency cap's cost at the outbox's guarded claim (issue 18: under 0.1 ms per text).

    python bench/frequency.py [--fans 100000] [--history 10] [--batch 100] [--store postgresql]

Fills a throwaway database (SQLite, or a schema of its own in FANLINE_TEST_DATABASE_URL or
--database-url) with subscribed fans, each with `--history` earlier messages (texts in, replies
and, for half of them, a marketing text claimed within the window) and one broadcast text
queued. Then claims batches of `--batch` queued texts as the sender does (reserve, then the
guarded claim), each inside a transaction that is rolled back so every run sees the same rows:
once with the cap off and once on. Prints, per text: the claim without the cap, with it, the
difference (what the cap costs) and the cap's own statements alone (lock, recheck, count).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import print_baseline  # noqa: E402
from bench.sender import database  # noqa: E402
from bot.audience.frequency import FrequencyCap  # noqa: E402
from bot.outbound import OutboxItem  # noqa: E402
from bot.storage import (
    Store,  # noqa: E402
    frequency_sql,  # noqa: E402
)
from bot.storage.outbox import _outbox_item  # noqa: E402
from bot.storage.tables import contacts, messages  # noqa: E402

CAP = FrequencyCap(texts=1, per=timedelta(hours=16))
CHUNK = 20_000


def fill(store: Store, fans: int, history: int) -> None:
    at = datetime.now(UTC)
    # fans where it is midday: the claim's quiet hours (08:00-21:00) must not hold their texts
    offset = (12 - at.hour + 12) % 24 - 12
    midday = {"timezone": f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"}
    for start in range(0, fans, CHUNK):
        ids = range(start + 1, min(start + CHUNK, fans) + 1)

        def insert(conn: Any, ids: range = ids) -> None:
            conn.execute(contacts.insert(), [
                {"id": i, "phone": f"+1555{i:07d}", "phone_hash": f"h{i}", "profile": midday,
                 "subscription": "subscribed", "subscribed_at": at - timedelta(days=30),
                 "created_at": at - timedelta(days=30)} for i in ids])  # fmt: skip
            rows = []
            for i in ids:
                for k in range(history):
                    marketing = k == history - 1 and i % 2 == 0  # half got one in the window
                    rows.append(_message(i, "broadcast" if marketing else ("sms", "reply")[k % 2],
                                         "delivered", at - timedelta(hours=1 if marketing else
                                                                    24 * (k + 1))))  # fmt: skip
                rows.append(_message(i, "broadcast", "queued", None))
            conn.execute(messages.insert(), rows)

        store.db.run_sync(insert)


def _message(fan: int, kind: str, status: str, claimed: datetime | None) -> dict[str, Any]:
    inbound = kind == "sms"
    return {
        "contact_id": fan, "direction": "in" if inbound else "out", "to_number": f"+1555{fan:07d}",
        "body": "text", "media_urls": [], "kind": kind,
        "status": "processed" if inbound else status, "private": False, "attempts": 0,
        "created_at": claimed or datetime.now(UTC), "claimed_at": None if inbound else claimed,
        "lookups": 0,
    }  # fmt: skip


def batches(store: Store, size: int, count: int) -> list[list[OutboxItem]]:
    def pick(conn: Any) -> list[list[OutboxItem]]:
        m = messages.c
        import sqlalchemy as sa

        rows = conn.execute(
            sa.select(m.id, m.contact_id, m.to_number, m.from_number, m.body, m.media_urls,
                      m.attempts, m.kind)
            .where(m.status == "queued").order_by(m.id).limit(size * count)
        ).all()  # fmt: skip
        items = [_outbox_item(r, None) for r in rows]
        return [items[i : i + size] for i in range(0, len(items), size)]

    return store.db.run_sync(pick)


def timed(store: Store, fn: Any, items: list[OutboxItem], out: list[Any] | None = None) -> float:
    """Seconds for fn(conn, items) in a transaction that is then rolled back."""
    with store.db.engine.connect() as conn:
        trans = conn.begin()
        t0 = time.perf_counter()
        result = fn(conn, items)
        elapsed = time.perf_counter() - t0
        trans.rollback()
    if out is not None:
        out.append(result)
    return elapsed


def per_text_ms(samples: list[float], size: int) -> tuple[float, float]:
    ordered = sorted(s / size * 1000 for s in samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fans", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=10, help="earlier messages per fan")
    parser.add_argument("--batch", type=int, default=100, help="texts per claim (the sender's)")
    parser.add_argument("--rounds", type=int, default=40, help="batches timed per variant")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print_baseline()
    with database(args.store, args.database_url) as url:
        store = Store.open(url, hash_key=b"bench")
        try:
            t0 = time.perf_counter()
            fill(store, args.fans, args.history)
            if args.store == "postgresql":  # the planner's statistics, as a live database has
                store.db.run_sync(lambda c: c.exec_driver_sql("ANALYZE"))
            print(f"{args.store}: {args.fans:,} fans, {args.fans * (args.history + 1):,} messages "
                  f"(filled in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
            picked = batches(store, args.batch, args.rounds)
            results: dict[str, list[float]] = {"off": [], "on": [], "cap alone": []}
            claimed: dict[str, list[Any]] = {"off": [], "on": []}

            def cap_alone(conn: Any, items: list[OutboxItem]) -> None:
                frequency_sql.capped(conn, CAP, items, datetime.now(UTC))

            for items in picked:  # interleaved: a busy moment disturbs all three alike
                store.frequency_cap = None
                results["off"].append(timed(store, store._claim_sends, items, claimed["off"]))
                store.frequency_cap = CAP
                results["on"].append(timed(store, store._claim_sends, items, claimed["on"]))
                results["cap alone"].append(timed(store, cap_alone, items))
        finally:
            store.close()
    off, on = per_text_ms(results["off"], args.batch), per_text_ms(results["on"], args.batch)
    alone = per_text_ms(results["cap alone"], args.batch)
    sent = {k: sum(len(c) for c in v) for k, v in claimed.items()}
    print(f"claim of {args.batch} texts, {len(picked)} batches, per text (median / p95); "
          f"claimed: {sent['off']:,} with the cap off, {sent['on']:,} on (half the fans "
          f"had one in the window)")  # fmt: skip
    print(f"  claim, cap off      {off[0]:.4f} / {off[1]:.4f} ms")
    print(f"  claim, cap on       {on[0]:.4f} / {on[1]:.4f} ms")
    print(f"  the cap's cost      {on[0] - off[0]:.4f} ms per text (median difference)")
    print(f"  cap statements      {alone[0]:.4f} / {alone[1]:.4f} ms  (aim: under 0.1 ms)")


if __name__ == "__main__":
    main()
