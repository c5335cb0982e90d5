"""Broadcast benchmark: N synthetic fans, segment + enqueue time, sender throughput, peak memory.

1. bulk-inserts N fans (executemany in batches) into a fresh SQLite file (or --database-url);
2. counts the segment and enqueues a personalised broadcast with quiet hours, set-based, in
   chunks (`BroadcastService.enqueue`): prints seconds and fans/s;
3. releases --send texts and sends them with the real OutboundSender + TwilioGateway (twilio
   SDK) against the Twilio-compatible server in its own process: prints messages/s;
4. prints the peak resident memory of this process (recipients are never loaded into Python).

    python bench/broadcast.py --fans 1000000 --send 20000
    python bench/broadcast.py --fans 10000 --send 2000          # quick
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.baseline import print_baseline  # noqa: E402
from bench.sender import free_port, start_server  # noqa: E402
from bot.audience.broadcasts import BroadcastService, new_broadcast  # noqa: E402
from bot.audience.segments import Segment, parse_cli  # noqa: E402
from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.outbound import OutboundSender  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage.tables import messages  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", None]
ZIPS = ["10001", "11201", "02139", "19104", "60614", "75201", "80202", "85004", "94105", "90026",
        "98101", "33101", "30303", "96813", "99501", None]  # fmt: skip
TAGS = [[], [], ["vip"], ["la"], ["vip", "la"], ["staff"]]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def insert_fans(store: Store, n: int, batch: int = 50_000) -> None:
    rng = random.Random(1)
    now = datetime.now(UTC)
    sql = ("INSERT INTO contacts (phone, phone_hash, profile, subscription, subscribed_at, "
           "created_at, last_inbound_at) VALUES (?, ?, ?, ?, ?, ?, ?)")  # fmt: skip
    if not store.db.is_sqlite:
        sql = sql.replace("?", "%s")
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            phone = f"+1{2012000000 + i * 7}"
            profile = {"first_name": rng.choice(NAMES), "zip": rng.choice(ZIPS),
                       "tags": rng.choice(TAGS), "birthday": f"19{rng.randint(70, 99)}-{rng.randint(1, 12):02d}-15"}  # fmt: skip
            joined = now - timedelta(days=rng.randint(0, 900))
            replied = now - timedelta(days=rng.randint(0, 120))
            sub = "subscribed" if rng.random() < 0.95 else "unsubscribed"
            rows.append((phone, store.phone_hash(phone), json.dumps(profile), sub,
                         _ts(store, joined), _ts(store, now), _ts(store, replied)))  # fmt: skip
        store.db.run_sync(lambda c, r=rows: c.exec_driver_sql(sql, r))


def _ts(store: Store, at: datetime) -> object:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if store.db.is_sqlite else at


async def enqueue(store: Store, segment: Segment, args: argparse.Namespace) -> tuple[int, int]:
    service = BroadcastService(store, chunk_size=args.chunk)
    spec = new_broadcast("bench", "Hey {first_name|friend}! Nova's new album drops Friday. Reply ALBUM for a preview.",
                         segment, default_rate=args.rate)  # fmt: skip
    bid = await service.create(spec)
    t0 = time.perf_counter()
    count = await service.records.count(segment)
    t1 = time.perf_counter()
    await service.send(bid)
    added = await service.enqueue(bid)
    t2 = time.perf_counter()
    print(f"segment {segment.describe()}: {count:,} fans counted in {t1 - t0:.2f}s")
    print(f"enqueued {added:,} texts in {t2 - t1:.2f}s ({added / max(t2 - t1, 1e-9):,.0f} fans/s, "
          f"chunks of {args.chunk:,}); peak memory so far {peak_mb():.0f} MB")  # fmt: skip
    return bid, added


async def send(store: Store, bid: int, args: argparse.Namespace, url: str) -> None:
    def release(conn: sa.Connection) -> None:  # pacing and quiet hours aside: due now
        ids = (
            sa.select(messages.c.id)
            .where(messages.c.broadcast_id == bid)
            .order_by(messages.c.id)
            .limit(args.send)
        )
        conn.execute(
            messages.update()
            .where(messages.c.id.in_(ids.scalar_subquery()))
            .values(not_before=None)
        )

    await store.db.run(release)
    gateway = TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006",
                            base_url=url, connections=args.connections)  # fmt: skip
    sender = OutboundSender(
        store, gateway, rate_per_second=1e9, batch_size=args.batch, lanes=args.lanes
    )
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.create_task(sender.run(stop))
    while sender.counts["sent"] + sender.counts["failed"] < args.send:
        if time.perf_counter() - t0 > args.max_seconds:
            break
        await asyncio.sleep(0.02)  # progress polling for a benchmark
    stop.set()
    await task
    elapsed = time.perf_counter() - t0
    await gateway.aclose()
    print(f"sent {sender.counts['sent']:,} texts in {elapsed:.2f}s: {sender.counts['sent'] / elapsed:,.0f} msg/s "
          f"(store: {store.db.engine.dialect.name}, batch {args.batch}, {args.lanes} lanes)")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="fanline-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    store = Store.open(url, hash_key=b"bench")
    t0 = time.perf_counter()
    await asyncio.to_thread(insert_fans, store, args.fans)
    print(f"inserted {args.fans:,} fans in {time.perf_counter() - t0:.1f}s")
    segment = parse_cli("bench", args.where) if args.where else Segment("everyone")
    bid, added = await enqueue(store, segment, args)
    if args.send:
        port = free_port()
        server = start_server(port)
        try:
            await send(store, bid, args, f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(timeout=10)
    store.close()
    print(f"peak memory (max RSS of this process): {peak_mb():.0f} MB")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fans", type=int, default=1_000_000)
    p.add_argument("--where", action="append", default=[], help="segment criterion, KEY=VALUE")
    p.add_argument("--chunk", type=int, default=20_000, help="recipients per enqueue transaction")
    p.add_argument("--rate", type=float, default=2_000.0, help="broadcast pacing, msg/s")
    p.add_argument("--send", type=int, default=20_000, help="texts to send (0: skip sending)")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--lanes", type=int, default=4)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    print_baseline()
    asyncio.run(main(args))
