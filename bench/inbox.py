"""Benchmark: the agent inbox with a deep queue.

    python bench/inbox.py [--open 10000] [--ops 500] [--database-url URL]

Seeds N open escalations through the production store (record_inbound, load_turn,
finish_turn: exactly what the pipeline writes), then prints, per backend:
  - the queue view's server time: the queue query + the service timers + the Jinja2 render of
    the page (the first 100 rows; tabs show counts for all), p50/p99 over repeated renders,
    and the same for rendering all N rows at once, for scale;
  - claim and reply latency p50/p99, one at a time on distinct threads (`--ops` of each);
  - the missed-escalation sweep over every escalation nobody claimed (marked missed, one
    follow-up each queued in the outbox).
SQLite in a temp file always; PostgreSQL when a URL is given or FANLINE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from argon2 import PasswordHasher  # noqa: E402

from bench.baseline import print_baseline  # noqa: E402
from bot.domain import EscalationSpec, TurnRecord  # noqa: E402
from bot.escalation import EscalationTimer  # noqa: E402
from bot.flows.model import Domain  # noqa: E402
from bot.flows.responses import Responses  # noqa: E402
from bot.inbox import queue, threads  # noqa: E402
from bot.inbox.auth import Auth, Session  # noqa: E402
from bot.inbox.views import templates  # noqa: E402
from bot.messages import InboundSms, OutboundSms, utcnow  # noqa: E402
from bot.storage import Store  # noqa: E402

US = "+15005550006"
REASONS = ["low_confidence", "out_of_scope", "fan_asked", "complaint", "business", "refund"]
PRIORITIES = ["normal"] * 6 + ["high"] * 3 + ["urgent", "low"]


async def seed(store: Store, n: int) -> None:
    due = utcnow() + timedelta(hours=1)  # the missed-escalation sweep below finds them due

    async def one(i: int) -> None:
        phone = f"+1555{i:07d}"
        rec = await store.record_inbound(InboundSms(f"SMbench{i:026d}", phone, US, f"question {i}"))
        ctx = await store.load_turn(rec.contact.id)
        await store.finish_turn(
            TurnRecord(
                rec.contact.id, ctx.conversation_id, rec.message_id,
                events=[("intent", {"intent": "out_of_scope", "confidence": 0.31}),
                        ("escalated", {"reason": REASONS[i % 6], "priority": PRIORITIES[i % 11]})],
                replies=[OutboundSms(phone, "A real person will text you back.", sender=US)],
                escalation=EscalationSpec(REASONS[i % 6], PRIORITIES[i % 11],
                                          (("out_of_scope", 0.31),), due),
            )
        )  # fmt: skip

    sem = asyncio.Semaphore(16)

    async def bounded(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(bounded(i) for i in range(n)))


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


async def time_queue_view(store: Store, session: Session, limit: int, runs: int) -> list[float]:
    env = templates()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        # the unit of work itself: the API caps a page at 500 rows, the bench wants all of them
        page = await store.db.run(queue._list_queue, "all", session.agent.id, limit, 0)
        timers = await threads.service_timers(store.db)
        html = env.get_template("queue.html").render(
            session=session, page=page, timers=timers, views=queue.VIEWS
        )
        out.append(time.perf_counter() - start)
        assert len(page.items) == limit and len(html) > limit * 100
    return out


async def time_missed_sweep(store: Store, waiting: int) -> None:
    """Every escalation nobody claimed is past due: one sweep marks them missed and queues one
    follow-up each (the server's timer does this every 30 s, for what fell due meanwhile)."""
    domain = Domain.model_validate(
        {"responses": {"utter_escalation_missed": [{"text": "Sorry, nobody could answer yet."}]}}
    )
    timer = EscalationTimer(store, lambda: Responses(domain), batch=500)
    start = time.perf_counter()
    missed = await timer.sweep(utcnow() + timedelta(hours=2))
    took = time.perf_counter() - start
    assert len(missed) == waiting, (len(missed), waiting)
    print(f"  missed-escalation sweep: {len(missed)} escalations and follow-ups in {took:.2f} s "
          f"({len(missed) / took:,.0f}/s)")  # fmt: skip


async def run_backend(url: str, n: int, ops: int) -> None:
    store = Store.open(url, hash_key=b"bench")
    try:
        t0 = time.perf_counter()
        await seed(store, n)
        print(f"  seeded {n} escalations in {time.perf_counter() - t0:.1f}s")
        auth = Auth(store.db, b"bench", hasher=PasswordHasher(time_cost=1, memory_cost=8192))
        agent = await auth.create_agent("bench", "bench-password")
        session = Session(agent, "csrf")
        page = await time_queue_view(store, session, queue.PAGE, 30)
        print(f"  queue view, {queue.PAGE} of {n} rows: p50 {pct(page, 50):.1f} ms, "
              f"p99 {pct(page, 99):.1f} ms (query + timers + render)")  # fmt: skip
        full = await time_queue_view(store, session, n, 5)
        print(f"  queue view, all {n} rows:  p50 {pct(full, 50):.1f} ms")
        listing = await queue.list_queue(store.db, "unassigned", agent, limit=ops)
        claims, replies = [], []
        for item in listing.items:
            start = time.perf_counter()
            await queue.claim(store.db, item.conversation_id, agent)
            claims.append(time.perf_counter() - start)
            start = time.perf_counter()
            await queue.reply(
                store.db, item.conversation_id, agent, "Hi! A person from the team here."
            )
            replies.append(time.perf_counter() - start)
        print(
            f"  claim: p50 {pct(claims, 50):.2f} ms, p99 {pct(claims, 99):.2f} ms ({len(claims)} ops)"
        )
        print(
            f"  reply: p50 {pct(replies, 50):.2f} ms, p99 {pct(replies, 99):.2f} ms ({len(replies)} ops)"
        )
        await time_missed_sweep(store, n - len(claims))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=10_000, help="open escalations to seed")
    parser.add_argument("--ops", type=int, default=500, help="claims and replies to time")
    parser.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite")
        asyncio.run(run_backend(f"sqlite:///{tmp}/bench.db", args.open, args.ops))
    if args.database_url:
        from bot.storage.db import scratch_schema

        print("PostgreSQL (a throwaway schema)")
        with scratch_schema(args.database_url, "bench") as url:
            asyncio.run(run_backend(url, args.open, args.ops))


if __name__ == "__main__":
    main()
