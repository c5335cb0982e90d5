"""Scaling on PostgreSQL (issue 17, item 6): web 1, 2, 3 processes + worker(s), one database.

For each configuration, a fresh PostgreSQL schema (FANLINE_TEST_DATABASE_URL or
--database-url), `fanline db upgrade`, then `fanline run --role web --workers N --no-migrate`
and `--senders` x `fanline run --role worker --no-migrate`, all on 127.0.0.1 with the
Twilio-compatible server in its own process (sends are counted by their claim times in the
database). While fans text (bench/load.py's signed webhooks, closed loop, bounded by --turns
and --max-seconds), the worker sends a backlog queued from the line's one number at --rate
segments/s (a broadcast going out while its replies come in). Per configuration it prints turns/s, p50/p99, server
CPU per turn, sends/s and the number's rate held (deviation from --rate), and the database
connections the processes held; after the last one, the table sizes (pg_total_relation_size)
and bytes per row, for docs/scaling.md.

    python bench/scale.py [--web 1,2,3] [--senders 1] [--rate 20] [--max-seconds 30]
                          [--unique-texts]
    python bench/scale.py --quick          # web 1,2; 8 s phases; fewer fans

The load generator shares the machine's CPUs with the servers: on a 2-core machine the
figures show where the CPUs are full, not what more cores would give.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.baseline import print_baseline  # noqa: E402
from bench.chaos import Server, cli  # noqa: E402
from bench.send_rate import slope, window  # noqa: E402
from bench.sender import children, cpu_s, free_port, start_server  # noqa: E402
from bot.messages import OutboundSms  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage.db import normalise_url, scratch_schema  # noqa: E402
from bot.testing import bind_local, url_of  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

NUMBER = load.OUR_NUMBER  # the line's one number: replies and the backlog share its rate
SECRET = "bench-scale"


def pg_connections(pids: list[int]) -> int:
    """Established TCP connections to port 5432 held by these processes (and their children)."""
    inodes: set[str] = set()
    for pid in {p for q in pids for p in [q, *children(q)]}:
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(fd.path)
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                f = row.split()
                if f[2].endswith(":1538") and f[3] == "01" and f[9] in inodes:
                    count += 1
    return count


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine so far, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return sum(f) - idle, sum(f)


def table_sizes(db_url: str) -> list[tuple[str, int, int]]:
    """(table, rows, bytes with indexes and TOAST) for every table of the run's schema."""
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1"
            )).scalars().all()  # fmt: skip
            out = []
            for name in names:
                rows = conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                size = conn.execute(
                    sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": name}
                ).scalar_one()
                out.append((name, rows, size))
            return out
    finally:
        engine.dispose()


async def one(args: argparse.Namespace, web: int, db_url: str, tmp: Path) -> dict[str, float]:
    twilio_port = free_port()
    twilio = start_server(twilio_port)  # its own process, as bench/load.py runs it
    sock = bind_local()
    url = url_of(sock)
    sock.close()  # the web server binds this port
    env = os.environ | {
        "FANLINE_DATABASE_URL": db_url, "FANLINE_PORT": url.rsplit(":", 1)[1],
        "FANLINE_HOST": "127.0.0.1", "FANLINE_PUBLIC_URL": url, "FANLINE_SECRET_KEY": SECRET,
        "FANLINE_SEND_RATE_PER_SECOND": str(args.rate), "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN, "TWILIO_NUMBER": NUMBER,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}", "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    servers = [Server(env, web, tmp / f"web-{web}.log", "web")]
    try:
        await asyncio.to_thread(cli, env, "db", "upgrade")
        env["FANLINE_MIGRATE_ON_START"] = "false"
        servers[0].env = env
        urls = [url]
        for i in range(args.senders):
            sock = bind_local()
            urls.append(url_of(sock))
            sock.close()
            port = urls[-1].rsplit(":", 1)[1]
            servers.append(Server(env | {"FANLINE_PORT": port}, 1, tmp / f"worker-{web}-{i}.log",
                                  "worker"))  # fmt: skip
        for s in servers:
            s.start()
        for s, u in zip(servers, urls, strict=True):
            await s.ready(u, args.ready_timeout)
        return await measure(args, web, url, db_url, servers)
    finally:
        for s in servers:
            s.stop()
        twilio.terminate()
        try:
            twilio.wait(timeout=15)
        except subprocess.TimeoutExpired:
            twilio.kill()
            twilio.wait()


def claimed(db_url: str, t0: float, t1: float) -> list[float]:
    """When each send from the number was claimed (after its rate grant), database clock."""
    engine = sa.create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(sa.text(
                "SELECT extract(epoch FROM claimed_at) FROM messages WHERE direction = 'out' "
                "AND claimed_at IS NOT NULL AND extract(epoch FROM claimed_at) BETWEEN :a AND :b"
            ), {"a": t0, "b": t1}).scalars().all())  # fmt: skip
    finally:
        engine.dispose()


async def measure(args: argparse.Namespace, web: int, url: str, db_url: str,
                  servers: list[Server]) -> dict[str, float]:  # fmt: skip
    pids = [s.proc.pid for s in servers if s.proc is not None]
    store = Store.open(db_url, hash_key=SECRET.encode())
    backlog = int(args.rate * (args.max_seconds + 60))  # outlasts warm-up and the phase
    texts = [OutboundSms(f"+1646{i:07d}", f"Tour dates are out! #{i}") for i in range(backlog)]
    await store.queue_outbound(texts)
    store.close()
    fans = load.Fans(url, args.fans, args.unique_texts)
    per = 8  # several small pools, as bench/load.py does
    limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
    conns: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        http = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=15.0, limits=limits)
            )  # fmt: skip
            for _ in range(max(1, -(-args.concurrency // per)))
        ]
        warm = argparse.Namespace(**{**vars(args), "turns": 200, "first": 0})
        await load.max_throughput(http, fans, warm)
        run = argparse.Namespace(**{**vars(args), "first": 200})
        done = asyncio.Event()

        async def sample() -> None:  # connections held, once a second while the load runs
            while not done.is_set():
                conns.append(await asyncio.to_thread(pg_connections, pids))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 1.0)

        sampler = asyncio.create_task(sample())
        web_cpu0, worker_cpu0 = cpu_s(pids[0]), sum(cpu_s(p) for p in pids[1:])
        busy0, client0 = cpu_ticks(), time.process_time()
        t0, turns0 = time.time(), load.done_turns()
        tps = await load.max_throughput(http, fans, run)
        t1 = time.time()
        done.set()
        await sampler
        turns = load.done_turns() - turns0
        web_cpu = cpu_s(pids[0]) - web_cpu0
        worker_cpu = sum(cpu_s(p) for p in pids[1:]) - worker_cpu0
        client_cpu = time.process_time() - client0
        busy1 = cpu_ticks()
    tally = load._TALLIES[-1]
    q = statistics.quantiles(tally.latencies, n=100) if len(tally.latencies) > 1 else [0.0] * 99
    at = [float(t) for t in await asyncio.to_thread(claimed, db_url, t0, t1)]
    sends = len(at) / (t1 - t0)
    fitted = slope(at)
    row = {
        "web": web, "turns/s": tps, "p50 ms": q[49] * 1e3, "p99 ms": q[98] * 1e3,
        "errors": sum(tally.errors.values()), "web CPU ms/turn": web_cpu / max(turns, 1) * 1e3,
        "worker CPU ms/send": worker_cpu / max(len(at), 1) * 1e3, "sends/s": sends,
        "deviation %": (sends / args.rate - 1) * 100, "slope %": (fitted / args.rate - 1) * 100,
        "client CPU ms/turn": client_cpu / max(turns, 1) * 1e3,
        "CPUs busy %": (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1) * 100,
        "max in 1 s": window(at), "pg conns": max(conns, default=0), "load": os.getloadavg()[0],
    }  # fmt: skip
    print(f"web {web} + {args.senders} worker(s): {tps:,.0f} turns/s, p50 {row['p50 ms']:.0f} ms, "
          f"p99 {row['p99 ms']:.0f} ms, errors {row['errors']}; web CPU "
          f"{row['web CPU ms/turn']:.2f} ms/turn; sends {sends:.1f}/s for {args.rate:g}/s "
          f"configured ({row['deviation %']:+.1f} %, least squares {row['slope %']:+.1f} %, "
          f"at most {row['max in 1 s']} in 1 s), worker CPU {row['worker CPU ms/send']:.2f} ms/send; PostgreSQL connections held "
          f"{row['pg conns']}; load generator CPU {row['client CPU ms/turn']:.2f} ms/turn; the "
          f"machine's CPUs {row['CPUs busy %']:.0f} % busy; load {row['load']:.1f}",
          flush=True)  # fmt: skip
    return row


def print_table(rows: list[dict[str, float]], senders: int, rate: float) -> None:
    print(f"\n| web processes (+ {senders} worker) | turns/s | p50 ms | p99 ms | web CPU ms/turn "
          f"| sends/s ({rate:g} configured) | rate held | most in 1 s | PG connections "
          f"| CPUs busy | load |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['web']:.0f} | {r['turns/s']:,.0f} | {r['p50 ms']:.0f} | {r['p99 ms']:,.0f} "
              f"| {r['web CPU ms/turn']:.2f} | {r['sends/s']:.1f} | {r['deviation %']:+.1f} % "
              f"(slope {r['slope %']:+.1f} %) | {r['max in 1 s']:.0f} | {r['pg conns']:.0f} "
              f"| {r['CPUs busy %']:.0f} % | {r['load']:.1f} |")  # fmt: skip


def print_sizes(sizes: list[tuple[str, int, int]]) -> None:
    print("\n| table | rows | total size (kB, indexes and TOAST included) | bytes per row |")
    print("| --- | --- | --- | --- |")
    for name, rows, size in sizes:
        if rows:
            print(f"| {name} | {rows:,} | {size / 1024:,.0f} | {size / rows:,.0f} |")
    print(f"empty tables: {', '.join(n for n, r, _ in sizes if not r) or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--web", default="1,2,3", help="web processes per configuration")
    ap.add_argument("--senders", type=int, default=1, help="--role worker processes")
    ap.add_argument("--rate", type=float, default=20.0, help="the number's send rate, segments/s")  # fmt: skip
    ap.add_argument("--turns", type=int, default=20000, help="texts per phase, at most")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="bound of each phase")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--fans", type=int, default=2000, help="distinct fans texting")
    ap.add_argument("--unique-texts", action="store_true",
                    help="no two texts alike (replies to a broadcast: no parse cache)")  # fmt: skip
    ap.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    ap.add_argument("--ready-timeout", type=float, default=180.0)
    ap.add_argument("--quick", action="store_true", help="web 1,2; 8 s phases; 500 fans")
    ap.add_argument("--logs", type=Path, help="keep the servers' logs here (default: dropped)")
    args = ap.parse_args()
    # SIGTERM (a `timeout` around the run) unwinds like Ctrl-C: the servers are stopped and
    # the scratch schema dropped instead of left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.web, args.max_seconds, args.fans, args.turns = "1,2", 8.0, 500, 4000
    if not args.database_url:
        raise SystemExit("needs PostgreSQL: FANLINE_TEST_DATABASE_URL or --database-url")
    print_baseline()
    rows, sizes = [], []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.logs or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        for web in (int(w) for w in args.web.split(",")):
            with scratch_schema(args.database_url, "bench_scale") as db_url:
                rows.append(asyncio.run(one(args, web, db_url, tmp)))
                sizes = table_sizes(db_url)
    print_table(rows, args.senders, args.rate)
    print(f"\nthe last configuration's tables ({args.fans:,} fans texting the demo script; the "
          f"backlog queued as outbound rows):")  # fmt: skip
    print_sizes(sizes)
    print_baseline()  # again: the machine's load may have moved during the run


if __name__ == "__main__":
    main()
