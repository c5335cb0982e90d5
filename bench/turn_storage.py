"""Benchmark: a turn's storage alone (begin_turn + finish_turn), no NLU, no flows.

    python bench/turn_storage.py [--fans 300] [--turns-per-fan 8] [--concurrency 1] [--database-url URL]

Each turn records a text, loads the fan's context and writes what a typical demo turn writes
(three events, the dialogue, one reply), through the server's own `Store` and database
thread. Prints turns/s, CPU time (every thread of this process) per turn and, on SQLite, the
statements SQLite ran per turn (BEGIN and COMMIT included, from its trace callback): figures a
loaded machine cannot inflate as much as wall-clock ones. `--database-url` (or
FANLINE_TEST_DATABASE_URL) adds PostgreSQL, in a throwaway schema. `--callgrind`, under
`valgrind --tool=callgrind --instr-atstart=no`, counts the instructions of the measured turns
alone (instrumentation switched on and off around them with callgrind_control -i).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.baseline import print_baseline  # noqa: E402
from bench.pipeline import databases  # noqa: E402
from bot.domain import TurnRecord  # noqa: E402
from bot.messages import InboundSms, OutboundSms  # noqa: E402
from bot.storage import Store  # noqa: E402

OURS = "+15550100000"


async def run(
    url: str, fans: int, per_fan: int, concurrency: int, callgrind: bool = False
) -> dict[str, float]:
    store = Store.open(url, hash_key=b"bench")
    statements = [0]
    if store.db.is_sqlite:  # count what SQLite itself runs, whichever layer issued it

        def trace(conn: object, _record: object) -> None:
            conn.set_trace_callback(lambda _sql: statements.__setitem__(0, statements[0] + 1))  # type: ignore[attr-defined]

        sa.event.listen(store.db.engine, "connect", trace)
        store.db.engine.dispose()  # connections made from now on are traced
    sem = asyncio.Semaphore(concurrency)

    async def one_fan(i: int, steps: int) -> None:
        number = f"+1555{i:07d}"
        for step in range(steps):
            async with sem:
                msg = InboundSms(f"SM{uuid.uuid4().hex}", number, OURS, f"text {step}")
                rec, ctx = await store.begin_turn(msg)
                assert ctx is not None
                record = TurnRecord(
                    ctx.contact.id, ctx.conversation_id, rec.message_id,
                    events=[("intent", {"name": "ask_tour", "confidence": 0.93}),
                            ("utter", {"response": "utter_tour"}),
                            ("flow_ended", {"flow": "tour"})],
                    replies=[OutboundSms(number, "Nova's tour starts in May!", sender=OURS)],
                    dialogue={"stack": [], "slots": {"city": None}, "recent": []},
                )  # fmt: skip
                await store.finish_turn(record)

    # the fans' first turns (contacts created) are not what is measured
    await asyncio.gather(*(one_fan(i, 1) for i in range(fans)))
    per_fan_measured = max(per_fan - 1, 1)
    statements[0] = 0
    _collect(callgrind, "on")
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_fan(i, per_fan_measured) for i in range(fans)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    _collect(callgrind, "off")
    store.close()
    turns = fans * per_fan_measured
    return {"turns": turns, "tps": turns / wall, "cpu_ms": cpu / turns * 1000,
            "statements": statements[0] / turns}  # fmt: skip


def _collect(callgrind: bool, state: str) -> None:
    if callgrind:
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True,
                       capture_output=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fans", type=int, default=300)
    ap.add_argument("--turns-per-fan", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    ap.add_argument("--callgrind", action="store_true",
                    help="count only the measured turns (under valgrind --instr-atstart=no)")  # fmt: skip
    args = ap.parse_args()
    print_baseline()
    for name, url in databases(args.database_url):
        r = asyncio.run(run(url, args.fans, args.turns_per_fan, args.concurrency, args.callgrind))
        stmts = f", {r['statements']:.1f} statements/turn" if name == "SQLite" else ""
        print(f"{name:<11} turn storage: {r['turns']:,} turns, {r['tps']:,.0f} turns/s, "
              f"CPU {r['cpu_ms']:.3f} ms/turn{stmts} (concurrency {args.concurrency})")  # fmt: skip


if __name__ == "__main__":
    main()
