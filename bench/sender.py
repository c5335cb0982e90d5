"""Sender benchmark: one OutboundSender process against the Twilio-compatible server on 127.0.0.1.

The server runs in its own process (`python -m bot.testing.twilio_server`); this process sends
N messages through the real twilio SDK and prints messages/s. Bounded in count and time.

    python bench/sender.py --messages 20000 --max-seconds 60 [--store memory|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.messages import DeliveryReport  # noqa: E402
from bot.outbound import OutboundSender, OutboxItem  # noqa: E402
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

    async def claim_outbox(self, limit: int) -> list[OutboxItem]:
        now = time.monotonic()
        self.due.extend(i for t, i in self.later if t <= now)
        self.later = [(t, i) for t, i in self.later if t > now]
        items = []
        while self.due and len(items) < limit:
            i = self.due.popleft()
            self.attempts[i] += 1
            to = f"+1415{i % 10_000_000:07d}"
            items.append(
                OutboxItem(
                    i, i, i, to, None, f"Thanks for texting! #{i}", (), self.attempts[i], "reply"
                )
            )
        return items

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        self.sent += len(results)

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None:
        self.later.append((time.monotonic() + delay_s, outbox_id))

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        self.failed += 1

    async def apply_delivery_report(self, report: DeliveryReport) -> bool:
        return False

    def remaining(self) -> int:
        return len(self.due) + len(self.later)


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


async def run(args: argparse.Namespace, url: str) -> None:
    store = MemoryStore(args.messages)
    gateway = TwilioGateway(
        TEST_ACCOUNT_SID,
        TEST_AUTH_TOKEN,
        from_number=OUR_NUMBER,
        base_url=url,
        connections=args.connections,
    )
    sender = OutboundSender(
        store,
        gateway,
        rate_per_second=args.rate,
        batch_size=args.batch,
        lanes=args.lanes,
        backoff_base=0.05,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(sender.run(stop))
    while store.remaining() and time.perf_counter() - started < args.max_seconds:
        await asyncio.sleep(0.05)  # progress polling for a benchmark, not test synchronisation
    stop.set()
    await task
    elapsed = time.perf_counter() - started
    await gateway.aclose()
    print(
        f"store: in-memory OutboxStore (bench/sender.py); gateway: twilio SDK {twilio_version()} async client"
    )
    print(f"sent {store.sent} of {args.messages} in {elapsed:.2f}s: {store.sent / elapsed:,.0f} msg/s "
          f"(failed {store.failed}, retried {sender.counts['retried']}, lanes {args.lanes}, batch {args.batch})")  # fmt: skip


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
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        asyncio.run(run(args, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
