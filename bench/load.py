"""Load benchmark: signed Twilio webhooks from many distinct fans against `fanline run` on 127.0.0.1.

Starts the local Twilio-compatible server and `fanline run` (the demo fan line, a temporary
SQLite database unless --database-url) as subprocesses, waits for /readyz, then:

1. max throughput: `--concurrency` fans texting at once (closed loop), `--turns` texts or
   `--max-seconds`, whichever comes first; prints turns/s, p50/p99 latency and errors;
2. fixed rate (open loop): texts at `--rate` per second (default: half the measured maximum)
   for `--rate-seconds`; prints the rate reached and p50/p99. A request that has to wait for
   a free connection counts its wait: latency is measured from the moment it was due.
3. `--burst N`: other fans texting at a fixed rate, first alone, then while one number posts
   N texts at once on its own connections; prints the other fans' p50/p95 both times (Twilio
   gives up on a webhook after 15 s) and how fast the burst's texts were acknowledged.

    python bench/load.py [--turns 6000] [--concurrency 64] [--fans 5000] [--workers 1]
    python bench/load.py --burst 1000 [--rate 10] [--rate-seconds 20]
                         [--py-spy /tmp/server-profile.txt]

Every request carries a valid X-Twilio-Signature (the twilio SDK's RequestValidator over the
public URL), so the server does all the work a real webhook costs. No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bench.sender import children, cpu_s, free_port, start_server  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

OUR_NUMBER = "+15005550006"
PATH = "/webhooks/twilio/sms"
FORM = "application/x-www-form-urlencoded"
WORDS = ["today", "tonight", "really", "please", "ok", "so", "um", "now", "again", "soon", "here",
         "also", "pls", "lol", "hey", "btw", "omg", "friday", "weekend", "city", "show", "ticket",
         "song", "album", "fan", "love", "wow", "yay", "cool"]  # fmt: skip
SCRIPT = ["hey!", "YES", "TOUR", "when does the presale start", "is there merch", "love you nova",
          "how much is shipping to canada", "thanks!!"]  # fmt: skip


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    inline: int = 0  # answered with the replies in the TwiML (the rest went by the outbox)

    def __post_init__(self) -> None:
        _TALLIES.append(self)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self, wall: float) -> str:
        n = len(self.latencies)
        if n < 2:
            return f"{n} turns in {wall:.1f}s; errors {self.errors or 0}"
        q = statistics.quantiles(self.latencies, n=100)
        return (f"{n:,} turns in {wall:.2f}s: {n / wall:,.0f} turns/s, p50 {q[49] * 1e3:.1f} ms, "
                f"p99 {q[98] * 1e3:.1f} ms, max {max(self.latencies) * 1e3:.0f} ms; "
                f"inline TwiML {self.inline / n:.0%}; errors {self.errors or 0}")  # fmt: skip


_TALLIES: list[Tally] = []


def done_turns() -> int:
    return sum(len(t.latencies) for t in _TALLIES)


class Fans:
    """Signed webhook forms from distinct fans; each fan walks the demo script in order."""

    def __init__(self, public_url: str, fans: int, unique: bool = False) -> None:
        self.url = public_url + PATH
        self.fans = fans
        self.unique = unique  # every text different: no help from the NLU's parse cache
        self.validator = RequestValidator(TEST_AUTH_TOKEN)
        self.run = uuid.uuid4().hex[:6]  # fresh numbers per run, whatever the database holds

    def text(self, k: int) -> tuple[bytes, dict[str, str]]:
        """Text number k: the form, url-encoded, and its headers with a valid signature."""
        fan, step = k % self.fans, k // self.fans
        body = SCRIPT[step % len(SCRIPT)]
        if self.unique:
            body = f"{body} {WORDS[k % len(WORDS)]} {WORDS[k // len(WORDS) % len(WORDS)]}"
        form = {"AccountSid": TEST_ACCOUNT_SID, "ApiVersion": "2010-04-01",
                "From": f"+1{int(self.run, 16) % 900 + 100}{fan:07d}", "To": OUR_NUMBER,
                "Body": body, "NumMedia": "0", "NumSegments": "1",
                "MessageSid": f"SM{uuid.uuid4().hex}", "SmsStatus": "received"}  # fmt: skip
        signature = self.validator.compute_signature(self.url, form)
        return urlencode(form).encode(), {"X-Twilio-Signature": signature, "Content-Type": FORM}

    def texts(self, first: int, count: int) -> list[tuple[bytes, dict[str, str]]]:
        # signed before the clock starts: the load generator shares the server's CPUs
        return [self.text(k) for k in range(first, first + count)]


async def post(
    http: httpx.AsyncClient, text: tuple[bytes, dict[str, str]], tally: Tally, due: float
) -> None:
    try:
        answer = await http.post(PATH, content=text[0], headers=text[1])
    except httpx.HTTPError as exc:
        tally.error(type(exc).__name__)
        return
    took = time.perf_counter() - due
    if answer.status_code != 200 or b"<Response" not in answer.content:
        tally.error(f"HTTP {answer.status_code}")
        return
    tally.latencies.append(took)
    tally.inline += b"<Message" in answer.content


async def max_throughput(
    http: list[httpx.AsyncClient], fans: Fans, args: argparse.Namespace
) -> float:
    tally, counter = Tally(), itertools.count()
    texts = fans.texts(args.first, args.turns)
    deadline = time.perf_counter() + args.max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while (k := next(counter)) < args.turns and time.perf_counter() < deadline:
            await post(client, texts[k], tally, time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(worker(http[j % len(http)]) for j in range(args.concurrency)))
    wall = time.perf_counter() - started
    print(f"max throughput, {args.concurrency} concurrent fans: {tally.summary(wall)}")
    return len(tally.latencies) / wall


async def fixed_rate(
    http: list[httpx.AsyncClient], fans: Fans, rate: float, seconds: float, first: int
) -> None:
    tally, tasks = Tally(), []
    texts = fans.texts(first, int(rate * seconds))
    started = time.perf_counter()
    for i in range(len(texts)):
        due = started + i / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)  # pacing the open loop, not synchronisation
        tasks.append(asyncio.create_task(post(http[i % len(http)], texts[i], tally, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    print(f"fixed rate {rate:,.0f}/s for {seconds:g}s: {tally.summary(wall)}")


def quantiles(tally: Tally) -> str:
    if len(tally.latencies) < 2:
        return f"{len(tally.latencies)} answered; errors {tally.errors or 0}"
    q = statistics.quantiles(tally.latencies, n=100)
    return (f"{len(tally.latencies):,} answered, p50 {q[49]:.2f} s, p95 {q[94]:.2f} s, "
            f"max {max(tally.latencies):.2f} s; errors {tally.errors or 0}")  # fmt: skip


async def burst(
    http: list[httpx.AsyncClient], fans: Fans, args: argparse.Namespace, server_pid: int
) -> None:
    """Other fans' webhook latency without, then with, one number bursting `--burst` texts."""
    rate, seconds = args.rate or 10.0, args.rate_seconds

    async def others(first: int) -> Tally:
        tally, tasks = Tally(), []
        texts = fans.texts(first, int(rate * seconds))
        started = time.perf_counter()
        for i, text in enumerate(texts):
            due = started + i / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)  # pacing the open loop, not synchronisation
            tasks.append(asyncio.create_task(post(http[i % len(http)], text, tally, due)))
        await asyncio.gather(*tasks)
        return tally

    quiet = await others(args.first)
    print(f"other fans at {rate:g}/s, no burst: {quantiles(quiet)}")
    one = Fans(fans.url.removesuffix(PATH), 1, unique=True)  # one fresh number
    texts = one.texts(0, args.burst)
    # 100 connections in pools of 8, each request waiting for a free one here: a pool with
    # hundreds of waiting requests costs httpcore O(waiting x connections) per request, and
    # that client CPU (about a minute for 1,000 texts) delayed the other fans' requests in
    # this process, which measured the load generator rather than the server
    per, pools = 8, 13
    limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
    async with contextlib.AsyncExitStack() as stack:
        own = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=http[0].base_url, timeout=60.0, limits=limits)
            )
            for _ in range(pools)
        ]
        free = [asyncio.Semaphore(per) for _ in own]

        async def flood_one(i: int, text: tuple[bytes, dict[str, str]]) -> None:
            async with free[i % pools]:
                await post(own[i % pools], text, flood, started)

        flood, started, cpu0 = Tally(), time.perf_counter(), cpu_s(server_pid)
        flooding = asyncio.gather(*(flood_one(i, text) for i, text in enumerate(texts)))
        loud = await others(args.first + int(rate * seconds))
        await flooding
        cpu = cpu_s(server_pid) - cpu0
    print(f"other fans at {rate:g}/s while one number bursts {args.burst:,}: {quantiles(loud)}")
    print(f"the burst's own texts acknowledged: {quantiles(flood)}")
    print(f"server CPU while the burst was taken in: {cpu:.1f} s, {cpu / args.burst * 1e3:.2f} ms "
          f"per burst text (the other fans' turns and the burst's answered so far included)")  # fmt: skip


def start_fanline(
    args: argparse.Namespace, tmp: Path, twilio_url: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "FANLINE_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/load.db",
        "FANLINE_PORT": str(port), "FANLINE_HOST": "127.0.0.1", "FANLINE_PUBLIC_URL": url,
        "FANLINE_SECRET_KEY": "bench-load", "FANLINE_WORKERS": str(args.workers),
        "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "TWILIO_NUMBER": OUR_NUMBER, "TWILIO_API_BASE_URL": twilio_url,
    }  # fmt: skip
    log = (tmp / "fanline.log").open("wb")
    cmd = [sys.executable, "-m", "bot", "--project", str(args.project), "run"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    return proc, url


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"fanline run exited:\n{log.read_text()[-3000:]}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)  # waiting for a server to come up, bounded
    raise SystemExit(f"fanline run not ready after {limit:g}s:\n{log.read_text()[-3000:]}")


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its worker processes, in MB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def profile(pid: int, out: str, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy not installed (pip install py-spy): no profile")
        return None
    # --gil: only the thread holding the GIL, i.e. where the Python CPU time goes
    cmd = [
        spy,
        "record",
        "-p",
        str(pid),
        "-o",
        out,
        "-f",
        "raw",
        "-d",
        str(int(seconds)),
        "-s",
        "--gil",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def bench(args: argparse.Namespace, url: str, server_pid: int) -> None:
    fans = Fans(url, args.fans, args.unique_texts)
    # several small pools: one httpx pool's per-request cost grows with its connection count
    per_client = 8
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    async with contextlib.AsyncExitStack() as stack:
        http = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=15.0, limits=limits)
            )
            for _ in range(max(1, -(-args.concurrency // per_client)))
        ]
        await max_throughput(http, fans, argparse.Namespace(**{**vars(args), "turns": 200}))
        args.first = 200  # after the warm-up's texts
        if args.burst:  # the profile covers both phases: alone, then with the burst
            spy = profile(server_pid, args.py_spy, 2.5 * args.rate_seconds) if args.py_spy else None
            await burst(http, fans, args, server_pid)
            if spy is not None:
                spy.wait()
                print(f"server profile (py-spy raw) in {args.py_spy}")
            return
        spy = profile(server_pid, args.py_spy, args.max_seconds) if args.py_spy else None
        server0, client0, turns0 = cpu_s(server_pid), time.process_time(), done_turns()
        tps = await max_throughput(http, fans, args)
        turns = done_turns() - turns0
        print(f"CPU per turn (independent of the machine's other load): server "
              f"{(cpu_s(server_pid) - server0) / turns * 1e3:.2f} ms, this load generator "
              f"{(time.process_time() - client0) / turns * 1e3:.2f} ms")  # fmt: skip
        if spy is not None:
            spy.wait()
            print(f"server profile (py-spy raw) in {args.py_spy}")
        rate = args.rate or tps / 2
        await fixed_rate(http, fans, rate, args.rate_seconds, args.first + args.turns)
    print(f"server memory after the run: {rss_mb(server_pid):.0f} MB RSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=6000, help="texts in the max-throughput phase")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="bound of that phase")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--fans", type=int, default=5000, help="distinct fans texting")
    ap.add_argument("--rate", type=float, help="fixed-rate phase (default: half the max)")
    ap.add_argument("--rate-seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--unique-texts", action="store_true",
                    help="no two texts alike (by default fans repeat the demo's 8 texts, as "
                         "fans do, and the NLU's parse cache answers most)")  # fmt: skip
    ap.add_argument("--project", type=Path, default=ROOT)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--ready-timeout", type=float, default=180.0)
    ap.add_argument("--burst", type=int, default=0,
                    help="only the burst phase: one number posts this many texts at once")  # fmt: skip
    ap.add_argument("--py-spy", help="record a py-spy profile of the server to this file")
    args = ap.parse_args()
    print_baseline()
    args.first = 0
    twilio_port = free_port()
    twilio = start_server(twilio_port)
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_fanline(args, Path(tmp), f"http://127.0.0.1:{twilio_port}")
        try:
            asyncio.run(wait_ready(url, server, Path(tmp) / "fanline.log", args.ready_timeout))
            print(f"fanline run ready on {url} ({args.workers} worker(s), "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}); load: {os.getloadavg()[0]:.2f}")  # fmt: skip
            asyncio.run(bench(args, url, server.pid))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            twilio.terminate()
            twilio.wait(timeout=10)


if __name__ == "__main__":
    main()
