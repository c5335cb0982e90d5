"""Sender benchmark: one OutboundSender process against the Twilio-compatible server on 127.0.0.1.

The server runs in its own process (`python -m bot.testing.twilio_server`); this process sends
N messages through the real twilio SDK and prints messages/s. Bounded in count and time.
`--store sqlite` / `--store postgresql` use the real `bot.storage.Store` (a temporary SQLite
file; a fresh schema in FANLINE_TEST_DATABASE_URL, or --database-url); `memory` isolates the
sender and the SDK from the database.

    python bench/sender.py --messages 20000 --max-seconds 60 [--store memory|sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import print_baseline  # noqa: E402
from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.messages import DeliveryReport, OutboundSms  # noqa: E402
from bot.outbound import OutboundSender, OutboxItem  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

OUR_NUMBER = "+15005550006"


class MemoryStore:
    """Minimal OutboxStore: a queue of due rows, so claiming costs O(batch)."""

    def __init__(self, n: int) -> None:
        self.due = deque(range(1, n + 1))
        self.later: list[tuple[float, int]] = []
        self.attempts = [0] * (n + 1)
        self.sent = 0
        self.failed = 0

    async def reserve_outbox(self, limit: int, lease_s: float) -> list[OutboxItem]:
        now = time.monotonic()
        self.due.extend(i for t, i in self.later if t <= now)
        self.later = [(t, i) for t, i in self.later if t > now]
        items = []
        while self.due and len(items) < limit:
            i = self.due.popleft()
            to = f"+1415{i % 10_000_000:07d}"
            items.append(
                OutboxItem(
                    i, i, i, to, None, f"Thanks for texting! #{i}", (), self.attempts[i], "reply"
                )
            )
        return items

    async def claim_sends(self, items: Sequence[OutboxItem]) -> list[OutboxItem]:
        for item in items:
            self.attempts[item.id] += 1
        return [replace(i, attempts=i.attempts + 1) for i in items]

    async def outbox_in_doubt(
        self, item: OutboxItem, delay_s: float, error: str, **kw: Any
    ) -> None:
        self.failed += 1

    async def due_in_doubt(self, limit: int = 500) -> list[OutboxItem]:
        return []

    async def uncertain_counts(self) -> dict[str, int]:
        return {}

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        self.sent += len(results)

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None:
        self.later.append((time.monotonic() + delay_s, outbox_id))

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        self.failed += 1

    async def stale_sending(self, older_than_s: float, limit: int = 500) -> list[OutboxItem]:
        return []

    async def settle_sending(self, lookups: Sequence[Any]) -> tuple[int, int]:
        return 0, 0

    async def apply_delivery_report(self, report: DeliveryReport) -> bool:
        return False

    def remaining(self) -> int:
        return len(self.due) + len(self.later)


def fan(i: int) -> str:
    return f"+1415{i % 10_000_000:07d}"


async def fill(store: Store, n: int) -> float:
    """Queue n texts to n distinct fans through the store; return the seconds it took."""
    started = time.perf_counter()
    for lo in range(0, n, 5000):
        texts = [
            OutboundSms(fan(i), f"Thanks for texting! #{i}") for i in range(lo, min(n, lo + 5000))
        ]
        await store.queue_outbound(texts)
    return time.perf_counter() - started


@contextmanager
def database(kind: str, url: str | None) -> Iterator[str]:
    """A throwaway database: a temporary SQLite file, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    if not url:
        raise SystemExit("--store postgresql needs FANLINE_TEST_DATABASE_URL or --database-url")
    from bot.storage.db import scratch_schema

    with scratch_schema(url, "bench") as scratch:
        yield scratch


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and its worker processes."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [c for k in kids for c in children(int(k))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bot.testing.twilio_server", "--port", str(port)]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the Twilio-compatible server did not start")


async def run(args: argparse.Namespace, url: str, db_url: str | None, server_pid: int) -> None:
    store: Any
    if db_url is None:
        store, label = MemoryStore(args.messages), "in-memory OutboxStore (bench/sender.py)"
    else:
        store = Store.open(db_url, hash_key=b"bench")
        label = f"bot.storage.Store on {store.db.engine.dialect.name}"
        print(f"queued {args.messages:,} texts in {await fill(store, args.messages):.2f}s")
    gateway = TwilioGateway(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=OUR_NUMBER, base_url=url,
        connections=args.connections,
    )  # fmt: skip
    sender = OutboundSender(
        store, gateway, rate_per_second=args.rate, batch_size=args.batch, lanes=args.lanes,
        backoff_base=0.05,
    )  # fmt: skip
    if args.shared_rate:  # the server's pacer: each send takes its slot from the database
        if db_url is None:
            raise SystemExit("--shared-rate needs --store sqlite or postgresql")
        from bot.pacing import SharedRates

        sender.pacer = SharedRates(store.db, sender.rule)
        label += ", the rate shared through the database"
    stop = asyncio.Event()
    started, cpu0, server0 = time.perf_counter(), time.process_time(), cpu_s(server_pid)
    task = asyncio.create_task(sender.run(stop))
    while (
        sender.counts["sent"] + sender.counts["failed"] < args.messages
        and time.perf_counter() - started < args.max_seconds
    ):
        await asyncio.sleep(0.02)  # progress polling for a benchmark, not test synchronisation
    stop.set()
    await task
    elapsed = time.perf_counter() - started
    cpu, server_cpu = time.process_time() - cpu0, cpu_s(server_pid) - server0
    await gateway.aclose()
    sent = sender.counts["sent"]
    print(f"store: {label}; gateway: twilio SDK {twilio_version()} async client")
    print(f"sent {sent:,} of {args.messages:,} in {elapsed:.2f}s: {sent / elapsed:,.0f} msg/s "
          f"(failed {sender.counts['failed']}, retried {sender.counts['retried']}, "
          f"lanes {args.lanes}, batch {args.batch})")  # fmt: skip
    print(f"CPU per message (independent of the machine's other load): this sender process "
          f"{cpu / max(sent, 1) * 1e3:.3f} ms ({sent / max(cpu, 1e-9):,.0f} msg per CPU-second), "
          f"the Twilio-compatible server {server_cpu / max(sent, 1) * 1e3:.3f} ms")  # fmt: skip
    if isinstance(store, Store):
        print(f"outbox afterwards: {await store.outbox_counts()}")
        store.close()


def twilio_version() -> str:
    from importlib.metadata import version

    return version("twilio")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="OutboundSender -> Twilio-compatible server, msg/s"
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1_000_000.0, help="per-sender msg/s limit")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--store", choices=["memory", "sqlite", "postgresql"], default="memory")
    parser.add_argument("--shared-rate", action="store_true",
                        help="the server's pacer: one UPDATE of the number's rate row per send")  # fmt: skip
    parser.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print_baseline()
    port = free_port()
    server = start_server(port)
    try:
        if args.store == "memory":
            asyncio.run(run(args, f"http://127.0.0.1:{port}", None, server.pid))
        else:
            with database(args.store, args.database_url) as db_url:
                asyncio.run(run(args, f"http://127.0.0.1:{port}", db_url, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
