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
    sub.add_parser(
        "status", help="outbound texts by state; each number's rate, today's count, backlog"
    ).set_defaults(func=_run(_status))
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
        args.settings = settings
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
    await _rates(store, args.settings)
    return 0


async def _rates(store: Any, settings: Any) -> None:
    """Each sending number's rate (shared by every process), today's texts against its daily
    cap, and its backlog. Sending numbers are the line's own, never a fan's."""
    from bot.outbound import DEFAULT_SENDER, sender_for
    from bot.pacing import number_kind
    from bot.storage import send_rates

    sender = sender_for(settings, store, gateway=None)  # type: ignore[arg-type]
    if hasattr(sender.pacer, "states"):  # Redis
        now, day, rows = await sender.pacer.states()
        await sender.pacer.aclose()
    else:
        now, day, rows = await store.db.run(send_rates.states)
    state = {r["key"]: r for r in rows}
    backlog = await store.outbox_backlog()
    keys = sorted({DEFAULT_SENDER, *settings.rate_limits, *state, *backlog})
    print(f"\n{'sender':<36}{'kind':<19}{'segments/s':>11}{'burst':>7}  {'today / cap':<17}"
          f"{'backlog due':>11}{'later':>9}")  # fmt: skip
    for key in keys:
        rule = sender.rule(key)
        shown = key or f"(default) {sender.default_sender or 'simulator'}"
        row = state.get(key)
        rate = f"{rule.per_second:g}"
        if row and row["slow_until"] > now and row["slow_factor"] < 1:
            rate = f"{rule.per_second * row['slow_factor']:g} slowed {row['slow_until'] - now:.0f}s"
        today = row["day_count"] if row and row["day"] == day else 0
        cap = f"{rule.daily_cap:,}" if rule.daily_cap else "-"
        due, later = backlog.get(key, (0, 0))
        kind = number_kind(key or sender.default_sender)
        print(f"{shown:<36}{kind:<19}{rate:>11}{rule.bucket:>7g}  {f'{today:,} / {cap}':<17}"
              f"{due:>11,}{later:>9,}")  # fmt: skip


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
