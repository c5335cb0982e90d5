"""One send rate across processes (issue 17, item 2): P sender processes on one database send
from ONE number through the local Twilio-compatible server; the server's accept times give the
achieved rate, its deviation from the configured one, and the most sends in any 1 s window.

    python bench/send_rate.py --processes 3 --rate 10 --seconds 30 [--store sqlite]
        [--redis redis://127.0.0.1:6379/0] [--pacer local]

The parent queues rate * seconds + burst texts from the number (PostgreSQL: a fresh schema in
FANLINE_TEST_DATABASE_URL or --database-url), serves the Twilio-compatible server in its own
event loop, and starts the senders as child processes (`--child`), each a real OutboundSender
built by `bot.outbound.sender_for` as the server builds it (the rate shared through the
database, or Redis with --redis).
`--pacer local` gives each process its own token bucket instead: what issue 17 measured.
Achieved rate: (texts sent - burst) / (last accept - first accept), as the burst goes at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import print_baseline  # noqa: E402
from bench.sender import database  # noqa: E402
from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.messages import OutboundSms  # noqa: E402
from bot.outbound import OutboundSender, sender_for  # noqa: E402
from bot.pacing import RateRule, RedisRates  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.testing import serve_in_process  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioServer  # noqa: E402

NUMBER = "+12125550100"  # a US long code (the rate is configured per run)


async def child(args: argparse.Namespace) -> None:
    """One sender process: send until nothing from the number is queued, or the deadline."""
    store = Store.open(args.database_url, hash_key=b"bench")
    gateway = TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=NUMBER,
                            base_url=args.twilio_url)  # fmt: skip
    rule = RateRule(args.rate, args.burst)
    granted: dict[int, float] = {}  # the ledger of grants kept (not handed back), DB clock

    def keep(_key: str, weight: float, grant: Any) -> None:
        if weight > 0 and grant.ok:
            granted[id(grant)] = grant.now + grant.wait
        elif weight < 0:
            granted.pop(id(grant), None)

    if args.pacer == "shared":  # built as the server builds it
        twilio = SimpleNamespace(number=NUMBER, messaging_service_sid=None)
        settings = SimpleNamespace(twilio=twilio, send_rate=args.rate, rate_limits={NUMBER: rule},
                                   redis_url=args.redis)  # fmt: skip
        sender = sender_for(settings, store, gateway)
        sender.pacer._on_grant = keep  # type: ignore[union-attr]
        if args.redis:
            sender.pacer.prefix = args.redis_prefix  # type: ignore[union-attr]
    else:
        sender = OutboundSender(store, gateway, rate_per_second=args.rate, rates={NUMBER: rule})
    sender.batch_size = args.batch  # small reservations: every process holds some texts
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + args.seconds * 3 + 30
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)  # progress polling for a benchmark, not test synchronisation
        if not (await store.outbox_counts()).get("queued"):
            break
    stop.set()
    await task
    await gateway.aclose()
    if isinstance(sender.pacer, RedisRates):
        await sender.pacer.aclose()
    store.close()
    print(json.dumps({**sender.counts, "grants": sorted(granted.values())}))


async def parent(args: argparse.Namespace, db_url: str) -> None:
    store = Store.open(db_url, hash_key=b"bench")
    total = int(args.rate * args.seconds + args.burst)
    texts = [OutboundSms(f"+1415{i:07d}", f"Tour dates are out! #{i}", sender=NUMBER)
             for i in range(total)]  # fmt: skip
    await store.queue_outbound(texts)
    server = TwilioServer()
    async with serve_in_process(server.app) as url:
        cmd = [sys.executable, __file__, "--child", "--database-url", db_url, "--twilio-url", url,
               "--rate", str(args.rate), "--burst", str(args.burst), "--seconds",
               str(args.seconds), "--pacer", args.pacer, "--batch", str(args.batch)]  # fmt: skip
        prefix = f"fanline:bench:{uuid.uuid4().hex}:"  # Redis keys of this run's own
        if args.redis:
            cmd += ["--redis", args.redis, "--redis-prefix", prefix]
        env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        procs = [
            await asyncio.create_subprocess_exec(*cmd, env=env, stdout=subprocess.PIPE)
            for _ in range(args.processes)
        ]
        outs = [await p.communicate() for p in procs]
    counts = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
    if args.redis:
        import redis

        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    at = sorted(m["_at"] for m in server.messages.values() if m["from"] == NUMBER)
    store.close()
    report(args, store.db.engine.dialect.name, total, at, counts)
    grants = sorted(t for c in counts for t in c["grants"])
    if grants:
        print(
            f"most grants in any 1 s window by the ledger (database clock): {window(grants)}; "
            f"the rest is the machine's scheduling between a grant and Twilio's accept"
        )


def report(args: argparse.Namespace, dialect: str, total: int, at: list[float],
           counts: list[dict[str, int]]) -> None:  # fmt: skip
    sent = len(at)
    span = at[-1] - at[0] if sent > 1 else 0.0
    achieved = (sent - args.burst) / span if span > 0 else float("nan")
    fitted = slope(at[int(args.burst) :])
    per_second = Counter(int(t - at[0]) for t in at)
    windows = window(at)
    steady = [per_second[k] for k in sorted(per_second)[1:-1]]  # whole seconds after the burst
    pacer = f"{args.pacer} (Redis)" if args.redis and args.pacer == "shared" else args.pacer
    print(f"{args.processes} sender processes on {dialect}, pacer {pacer}, one number "
          f"({NUMBER}) at {args.rate:g} segments/s, burst {args.burst:g}")  # fmt: skip
    print(f"sent {sent:,} of {total:,} (per process: {[c['sent'] for c in counts]}); accepted "
          f"over {span:.2f} s")  # fmt: skip
    print(f"achieved rate {achieved:.3f}/s for {args.rate:g}/s configured: deviation "
          f"{(achieved / args.rate - 1) * 100:+.2f} %; least-squares slope after the burst "
          f"{fitted:.3f}/s ({(fitted / args.rate - 1) * 100:+.2f} %)")  # fmt: skip
    print(f"most accepted in any 1 s window: {windows} (burst + rate = {args.burst + args.rate:g});"
          f" whole seconds after the first: min {min(steady, default=0)}, "
          f"max {max(steady, default=0)}")  # fmt: skip


def window(at: list[float]) -> int:
    """The most times in any 1 s window [t, t + 1) starting at one of them."""
    return max((sum(1 for t in at if s <= t < s + 1) for s in at), default=0)


def slope(at: list[float]) -> float:
    """Sends per second fitted over the accept times (robust to one late first or last send)."""
    n = len(at)
    if n < 3:
        return float("nan")
    mean_t, mean_i = sum(at) / n, (n - 1) / 2
    cov = sum((t - mean_t) * (i - mean_i) for i, t in enumerate(at))
    return cov / sum((t - mean_t) ** 2 for t in at)


def main() -> None:
    parser = argparse.ArgumentParser(description="one send rate across sender processes")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10.0, help="segments per second")
    parser.add_argument("--burst", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="texts queued: rate x this")
    parser.add_argument("--batch", type=int, default=10, help="rows a sender lane reserves")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--pacer", choices=["shared", "local"], default="shared")
    parser.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    parser.add_argument("--redis", help="the rate in Redis at this URL (fanline.redis_url)")
    parser.add_argument("--redis-prefix", default="fanline:bench:", help=argparse.SUPPRESS)
    parser.add_argument("--twilio-url")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return
    print_baseline()
    with database(args.store, args.database_url) as db_url:
        asyncio.run(parent(args, db_url))


if __name__ == "__main__":
    main()
