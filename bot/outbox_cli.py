"""`fanline outbox ...`: what the outbox holds, and the sends whose outcome nobody knows.

Off the message's path: an operator's view of step 10. A send is `in_doubt` while the sender
still looks it up at the provider and `unknown` once it gave up (see `bot.outbound`); neither
is ever sent again on its own. After checking the provider's message log, an operator settles
an `unknown` send with `resolve ID --requeue` (it never went out) or `--drop`. No phone numbers
or message bodies are printed: rows are named by outbox id and contact id.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register_outbox(subparsers: Any) -> None:
    p = subparsers.add_parser("outbox", help="outbound texts by state; sends in doubt")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    sub.add_parser("status", help="outbound texts by state").set_defaults(func=_run(_status))
    sub.add_parser(
        "unknown", help="sends whose outcome is not known (in_doubt, unknown)"
    ).set_defaults(func=_run(_unknown))
    resolve = sub.add_parser("resolve", help="settle `unknown` sends after checking Twilio")
    resolve.add_argument("ids", type=int, nargs="+", metavar="ID")
    what = resolve.add_mutually_exclusive_group(required=True)
    what.add_argument("--requeue", action="store_true", help="it never went out: send it")
    what.add_argument("--drop", action="store_true", help="it went out, or let it be")
    resolve.set_defaults(func=_run(_resolve))


def _run(handler: Any) -> Any:
    def command(args: argparse.Namespace) -> int:
        from bot.settings import load_settings
        from bot.storage import Store

        settings = load_settings(args.project)
        store = Store.open(settings.database_url, hash_key=settings.secret_key)
        try:
            return int(asyncio.run(handler(store, args)))
        finally:
            store.close()

    return command


async def _status(store: Any, args: argparse.Namespace) -> int:
    counts = await store.outbox_counts()
    for status, n in sorted(counts.items()):
        print(f"{status:<12}{n:>10,}")
    if counts.get("unknown"):
        print(f"{counts['unknown']:,} sends have an unknown outcome: fanline outbox unknown")
    return 0


async def _unknown(store: Any, args: argparse.Namespace) -> int:
    rows = await store.unknown_sends()
    if not rows:
        print("no sends in doubt")
        return 0
    print(f"{'id':>8}  {'state':<9}{'kind':<11}{'contact':>8} {'broadcast':>9}  "
          f"{'claimed at':<26}{'lookups':>7}")  # fmt: skip
    for r in rows:
        claimed = r["claimed_at"].isoformat() if r["claimed_at"] else "-"
        print(f"{r['id']:>8}  {r['status']:<9}{r['kind']:<11}{r['contact_id'] or '-':>8} "
              f"{r['broadcast_id'] or '-':>9}  {claimed:<26}{r['lookups']:>7}")  # fmt: skip
    print("check them in Twilio's message log, then: fanline outbox resolve ID --requeue|--drop")
    return 0


async def _resolve(store: Any, args: argparse.Namespace) -> int:
    outcome = "requeue" if args.requeue else "drop"
    changed = await store.resolve_unknown(args.ids, outcome)
    verb = "queued again" if outcome == "requeue" else "dropped"
    print(f"{changed} of {len(args.ids)} {verb} (only `unknown` sends change)")
    return 0 if changed == len(args.ids) else 1
