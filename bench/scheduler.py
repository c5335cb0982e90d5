"""Timed-flow scheduler benchmark: N subscribed fans with birthdays and signup dates, one day's due
jobs found and written to `flow_jobs`, then claimed: seconds and peak memory.

1. bulk-inserts N fans (contacts + their opt-in in the consent ledger, signups spread over
   900 days, birthdays over the year, ZIPs across US zones) into a fresh SQLite file (or
   --database-url);
2. sets the `after_signup` cursor to the opt-ins before the last day (what a scheduler that
   ran yesterday has read);
3. one pass of `TimedFlows.find` with the demo's timed flows (welcome series after signup,
   birthday text at 09:00 local, post-show at a date): the day's new signups and the birthdays
   of today and tomorrow, then a second pass (nothing new: the cursors) and the claim of
   every job due by the end of the day (`due -> running`, in batches);
4. prints seconds per step and the peak resident memory of this process.

With `--at`, a flow `at` the pass's own instant joins them: one job for every subscribed fan
(an announcement to the whole list), found by one INSERT ... SELECT and then claimed.

    python bench/scheduler.py --fans 1000000
    python bench/scheduler.py --fans 1000000 --at
    python bench/scheduler.py --fans 1000000 --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.baseline import print_baseline  # noqa: E402
from bot.audience.scheduler import LEASE, TimedFlows  # noqa: E402
from bot.flows import load_flows  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage import flow_job_store as jobs  # noqa: E402
from bot.storage.engagement_tables import flow_jobs  # noqa: E402
from bot.storage.tables import consent_events  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZIPS = ["10001", "60614", "80202", "94105", "98101", "33101", "85004", "96813", "99501", None]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def insert_fans(store: Store, n: int, now: datetime, batch: int = 50_000) -> None:
    rng = random.Random(1)
    pg = not store.db.is_sqlite
    mark = "%s" if pg else "?"
    contact_sql = (
        "INSERT INTO contacts (id, phone, phone_hash, profile, subscription, subscribed_at, "
        f"created_at) VALUES ({', '.join([mark] * 7)})"
    )
    consent_sql = (
        "INSERT INTO consent_events (id, contact_id, action, method, at) "
        f"VALUES ({', '.join([mark] * 5)})"
    )
    for start in range(0, n, batch):
        people, consents = [], []
        for i in range(start + 1, min(n, start + batch) + 1):
            phone = f"+1{2012000000 + i * 7}"
            born = datetime(1970, 1, 1) + timedelta(days=rng.randint(0, 365 * 35))
            profile = {"birthday": born.strftime("%Y-%m-%d"), "zip": rng.choice(ZIPS)}
            # ids in signup order, as the ledger has them
            joined = now - timedelta(seconds=(n - i) * 900 * 86400 / n)
            at = _ts(store, joined)
            people.append((i, phone, store.phone_hash(phone), json.dumps(profile), "subscribed",
                           at, at))  # fmt: skip
            consents.append((i, i, "opt_in", "web_form", at))
        store.db.run_sync(lambda c, r=people: c.exec_driver_sql(contact_sql, r))
        store.db.run_sync(lambda c, r=consents: c.exec_driver_sql(consent_sql, r))
    if pg:  # the rows above set their ids: move the sequences past them
        for table in ("contacts", "consent_events"):
            store.db.run_sync(
                lambda c, t=table: c.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), {n})"
                )
            )


def _ts(store: Store, at: datetime) -> object:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if store.db.is_sqlite else at


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="fanline-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    store = Store.open(url, hash_key=b"bench")
    now = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    t0 = time.perf_counter()
    await asyncio.to_thread(insert_fans, store, args.fans, now)
    print(f"inserted {args.fans:,} fans in {time.perf_counter() - t0:.1f}s "
          f"({store.db.engine.dialect.name})")  # fmt: skip
    yesterday = now - timedelta(days=1)
    ce = consent_events.c
    seen = await store.db.run(
        lambda c: c.execute(sa.select(sa.func.max(ce.id)).where(ce.at < yesterday)).scalar()
    )
    await store.db.run(jobs.move_cursor, "after_signup", int(seen or 0), yesterday)
    paths = [ROOT / "flows" / "timed.yml"]  # the demo's timed flows
    if args.at:  # and one to every fan, at the pass's instant
        paths.append(Path(tmp) / "at.yml")
        paths[-1].write_text(
            "flows:\n  bench_at:\n    trigger: {at: '" + now.isoformat() + "'}\n"
            "    steps: [{action: utter_bench}]\n"
        )
    flows = load_flows(paths)
    timed_flows = {k: f for k, f in flows.items() if f.trigger is not None}
    pipeline = SimpleNamespace(store=store, brain=SimpleNamespace(engine=SimpleNamespace(
        flows=timed_flows)))  # fmt: skip
    scheduler = TimedFlows(pipeline)  # type: ignore[arg-type]
    mem0 = peak_mb()
    t0 = time.perf_counter()
    found = await scheduler.find(now)
    t1 = time.perf_counter()
    again = await scheduler.find(now + timedelta(minutes=1))
    t2 = time.perf_counter()
    claimed = 0
    end_of_day = now.replace(hour=23, minute=59)
    while batch := await store.db.run(jobs.claim, end_of_day, LEASE, 5_000, None):
        claimed += len(batch)
    t3 = time.perf_counter()
    kinds = await store.db.run(
        lambda c: c.execute(
            sa.select(flow_jobs.c.trigger, sa.func.count()).group_by(flow_jobs.c.trigger)
        ).all()
    )
    print(f"found {found:,} jobs in {t1 - t0:.2f}s ({', '.join(f'{k}: {n:,}' for k, n in kinds)})")
    print(f"second pass: {again:,} new jobs in {t2 - t1:.2f}s (cursors: nothing read twice)")
    print(f"claimed {claimed:,} jobs due by the end of the day in {t3 - t2:.2f}s")
    print(f"find + claim: {t3 - t0:.2f}s; peak memory (max RSS of this process): "
          f"{peak_mb():.0f} MB ({mem0:.0f} MB before the pass)")  # fmt: skip
    store.close()


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fans", type=int, default=1_000_000)
    p.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    p.add_argument("--at", action="store_true",
                   help="add a flow `at` the pass's instant: a job for every subscribed fan")  # fmt: skip
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    print_baseline()
    asyncio.run(main(args))
