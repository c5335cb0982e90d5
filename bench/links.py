"""The tracked-link redirect under load (issue 18: p99 server time under 5 ms at 1,000 clicks/s).

    python bench/links.py [--links 100000] [--rate 1000] [--seconds 10] [--store postgresql]

Fills a throwaway database (SQLite, or a schema of its own in FANLINE_TEST_DATABASE_URL or
--database-url) with `--links` tracked links, starts the web role's redirect (`/l/<code>`, the
real blueprint and LinkStore) in a server process of its own, and sends `--rate` clicks a
second for `--seconds`, open loop (each click at its planned time, whether or not earlier
ones were answered), over keep-alive connections, from phones' User-Agents (every click is a
`human` click: the upsert of a click row each time; one in ten codes is clicked again). One in
twenty clicks is an unknown code (a 404). Prints the server's time per redirect (from the
request parsed to the response written: lookup, click upsert, commit) as p50 / p99 / max, the
clients' round trip, the rate reached and the database's click rows.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import print_baseline  # noqa: E402

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")  # fmt: skip
CHUNK = 20_000


def fill(url: str, count: int) -> list[str]:
    from bot.audience.links import new_code
    from bot.storage import Store
    from bot.storage.engagement_tables import links

    store = Store.open(url, hash_key=b"bench")
    at = datetime.now(UTC)
    codes = [new_code() for _ in range(count)]
    try:
        for start in range(0, count, CHUNK):
            rows = [{"code": c, "url": f"https://tix.example.com/nova?fan={i}", "message_id": i,
                     "contact_id": None, "broadcast_id": 1, "variant_id": None, "flow": None,
                     "created_at": at} for i, c in enumerate(codes[start : start + CHUNK], start)]  # fmt: skip
            store.db.run_sync(lambda conn, rows=rows: conn.execute(links.insert(), rows))
    finally:
        store.close()
    return codes


def serve(url: str, pipe: Any) -> None:
    """The server process: the redirect blueprint on the benchmark's database, with a timer."""
    from sanic import Sanic
    from sanic.response import json

    from bot.audience.redirect import redirect_blueprint
    from bot.storage import Store
    from bot.testing import bind_local, serve_in_process, url_of

    async def main() -> None:
        store = Store.open(url, hash_key=b"bench")
        app = Sanic("bench_links")
        app.blueprint(redirect_blueprint(lambda: store.db))
        times: list[float] = []

        @app.on_request
        async def start(request: Any) -> None:
            request.ctx.t0 = time.perf_counter()

        @app.on_response
        async def stop(request: Any, response: Any) -> None:
            if request.path.startswith("/l/"):
                times.append(time.perf_counter() - request.ctx.t0)

        @app.get("/_bench/times")
        async def report(request: Any) -> Any:
            out = list(times)
            times.clear()
            return json(out)

        sock = bind_local()
        async with serve_in_process(app, sock):
            pipe.send(url_of(sock))
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        store.close()

    asyncio.run(main())


async def client(host: str, port: int, plan: list[tuple[float, str]], t0: float,
                 rtts: list[float], statuses: dict[int, int]) -> None:  # fmt: skip
    """One keep-alive connection sending its share of the clicks at their planned times."""
    reader, writer = await asyncio.open_connection(host, port)
    for at, code in plan:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not synchronisation
        sent = time.perf_counter()
        writer.write(f"GET /l/{code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {PHONE}\r\n\r\n"
                     .encode())  # fmt: skip
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        rtts.append(time.perf_counter() - sent)
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def load(
    base: str, codes: list[str], rate: float, seconds: float, conns: int
) -> dict[str, Any]:
    import httpx

    host, port = base.removeprefix("http://").split(":")
    rng = random.Random(7)
    total = int(rate * seconds)
    repeat = codes[: max(1, len(codes) // 10)]
    plan = []
    for i in range(total):
        roll = rng.random()
        code = ("Zz" + "0" * 8) if roll < 0.05 else rng.choice(repeat if roll < 0.15 else codes)
        plan.append((i / rate, code))
    rtts: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base) as http:
        await http.get("/_bench/times")  # warm-up requests don't count
        t0 = time.perf_counter() + 0.2
        await asyncio.gather(*(client(host, int(port), plan[k::conns], t0, rtts, statuses)
                               for k in range(conns)))  # fmt: skip
        elapsed = time.perf_counter() - t0
        server = (await http.get("/_bench/times")).json()
    return {"server": server, "rtts": rtts, "statuses": statuses, "elapsed": elapsed,
            "total": total}  # fmt: skip


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    print_baseline()
    import tempfile

    from bot.storage.db import create_engine, scratch_schema, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        if args.store == "postgresql":
            if not args.database_url:
                sys.exit("--store postgresql needs --database-url or FANLINE_TEST_DATABASE_URL")
            context: Any = scratch_schema(args.database_url, "bench_links")
        else:
            from contextlib import nullcontext

            context = nullcontext(f"sqlite:///{tmp}/links.db")
        with context as url:
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
            codes = fill(url, args.links)
            run(url, codes, args)


def run(url: str, codes: list[str], args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from bot.storage.db import create_engine
    from bot.storage.engagement_tables import link_clicks

    ours, theirs = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(url, theirs))
    proc.start()
    try:
        base = ours.recv()
        r = asyncio.run(load(base, codes, args.rate, args.seconds, args.connections))
    finally:
        ours.send("stop")
        proc.join(30)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows, clicks = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(link_clicks.c.clicks), 0))
        ).one()
    engine.dispose()
    server, rtts = r["server"], r["rtts"]
    print(f"store {args.store}, {args.links:,} links, {r['total']:,} clicks planned at "
          f"{args.rate:,.0f}/s over {args.connections} connections; "
          f"reached {len(rtts) / r['elapsed']:,.0f}/s; answers {dict(sorted(r['statuses'].items()))}")  # fmt: skip
    print(f"server time per redirect: p50 {pct(server, 0.5):.2f} ms, p99 {pct(server, 0.99):.2f} ms, "
          f"max {max(server) * 1000:.1f} ms (aim: p99 < 5 ms); mean {statistics.mean(server) * 1000:.2f} ms")  # fmt: skip
    print(f"client round trip: p50 {pct(rtts, 0.5):.2f} ms, p99 {pct(rtts, 0.99):.2f} ms")
    print(f"click rows {rows:,}, clicks counted {clicks:,}")


if __name__ == "__main__":
    main()
