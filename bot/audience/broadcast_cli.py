"""`fanline broadcast ...`, `fanline fans ...` and `fanline segments ...` (registered by bot/cli.py).

Thin: parse arguments, call `bot.audience.broadcasts`, `bot.audience.privacy`, `bot.audience.consent`, print. Texts are
sent by the outbox sender of `fanline run`; `broadcast send` enqueues and then shows live
progress with a tqdm bar until the last text has left the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Location

Handler = Callable[[Any, Any, argparse.Namespace], Awaitable[int]]


def register_broadcast(subparsers: Any) -> None:
    p = subparsers.add_parser("broadcast", help="texts to a segment of fans: create, preview, send")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a draft (nothing is sent yet)")
    create.add_argument("name")
    create.add_argument(
        "--text", required=True, help="the text; {first_name} or {first_name|friend}"
    )
    _segment_args(create)
    create.add_argument("--media", action="append", default=[], help="media URL (MMS); repeatable")
    create.add_argument("--sender", help="send from this number (default: the configured one)")
    create.add_argument("--rate", type=float, help="messages per second (default: send_rate)")
    create.add_argument("--quiet-hours", default="08:00-21:00", help="fans' local sending window")
    create.add_argument("--zone", default="America/New_York", help="zone when a fan's is unknown")
    create.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='"B: TEXT"',
        help="A/B: another text (--text is A); repeat for C, D, E",
    )
    create.add_argument(
        "--test-share",
        help="A/B: share of the segment that gets the test "
        "(default 20%%), split evenly; the rest get the winner",
    )
    create.add_argument(
        "--winner-by", choices=("ctr", "replies"), help="A/B: click-through (default) or reply rate"
    )
    create.add_argument("--decide-after", help="A/B: the winner after this long (default 2h)")
    create.add_argument("--send-winner", choices=("auto", "manual"),
                        help="A/B: send the winner to the rest by itself (default) or by "
                        "`fanline broadcast send-winner`")  # fmt: skip
    create.set_defaults(func=_run(_create))
    winner = sub.add_parser("send-winner", help="A/B: send the winning text to the rest now")
    winner.add_argument("id", type=int)
    winner.add_argument("--variant", help="this label instead of the measured winner")
    winner.set_defaults(func=_run(_send_winner))
    for name, helptext, fn in (
        ("preview", "recipients, sample texts, segments and cost", _preview),
        ("send", "start now and show progress", _send),
        ("pause", "hold every queued text", _pause),
        ("resume", "release held texts, or retry a failed broadcast", _resume),
        ("retry", "retry a failed broadcast from where it stopped (as resume)", _resume),
        ("cancel", "cancel every queued text", _cancel),
        ("status", "progress and delivery statistics", _status),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("id", type=int)
        if name in ("send", "status"):
            cmd.add_argument("--no-wait", action="store_true", help="do not watch the progress")
        cmd.set_defaults(func=_run(fn))
    sched = sub.add_parser("schedule", help="send at a time (ISO 8601 with offset)")
    sched.add_argument("id", type=int)
    sched.add_argument("at", help="e.g. 2026-05-01T18:00-04:00")
    sched.set_defaults(func=_run(_schedule))
    lst = sub.add_parser("list", help="every broadcast and its state")
    lst.set_defaults(func=_run(_list))
    work = sub.add_parser("worker", help="start scheduled broadcasts when due (runs until Ctrl-C)")
    work.set_defaults(func=_run(_worker))


def register_fans(subparsers: Any) -> None:
    p = subparsers.add_parser("fans", help="data rights and consent records")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    exp = sub.add_parser("export", help="everything held about a fan, as JSON")
    exp.add_argument("number")
    exp.add_argument("--out", type=Path, help="write to a file instead of stdout")
    exp.set_defaults(func=_run(_export))
    erase = sub.add_parser("erase", help="erase a fan's personal data (keeps their opt-out)")
    erase.add_argument("number")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(func=_erase_command)
    ledger = sub.add_parser("consent-export", help="the consent ledger as CSV, for audits")
    ledger.add_argument("file", type=Path)
    ledger.add_argument("--since", help="only events on or after this date (YYYY-MM-DD)")
    ledger.set_defaults(func=_run(_consent_export))


def register_segments(subparsers: Any) -> None:
    p = subparsers.add_parser("segments", help="segments from segments.yml, with counts")
    sub = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    sub.add_parser("list", help="segments and their fan counts").set_defaults(func=_run(_segments))
    count = sub.add_parser("count", help="how many fans a segment reaches")
    _segment_args(count)
    count.set_defaults(func=_run(_count))


def _segment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segment", help="a segment from segments.yml (default: every subscribed fan)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="ad-hoc criterion, e.g. tags=vip, state=NY,NJ, replied_within_days=30")  # fmt: skip


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from bot.settings import load_settings
        from bot.storage import Store

        settings = load_settings(args.project)
        store = Store.open(settings.database_url, hash_key=settings.secret_key)
        try:
            return asyncio.run(handler(settings, store, args))
        finally:
            store.close()

    return command


def _service(settings: Any, store: Any) -> Any:
    from bot.audience.broadcasts import BroadcastService

    return BroadcastService(
        store,
        default_rate=settings.send_rate,
        links=settings.links,
        public_url=settings.public_url,
    )


def _segment(settings: Any, args: argparse.Namespace) -> Any:
    from bot.audience.segments import Segment, load_segments, parse_cli

    if args.where:
        return parse_cli(args.segment or "ad hoc", args.where)
    if not args.segment:
        return Segment("everyone")
    path = settings.project_dir / "segments.yml"
    segments = load_segments(path)
    if args.segment not in segments:
        known = ", ".join(sorted(segments)) or "none"
        raise ConfigError(f"unknown segment {args.segment!r} (known: {known})", Location(str(path)))
    return segments[args.segment]


async def _create(settings: Any, store: Any, args: argparse.Namespace) -> int:
    from bot.audience.broadcasts import new_broadcast
    from bot.audience.variants import ab_test

    start, _, end = args.quiet_hours.partition("-")
    ab = ab_test(
        args.text,
        args.variant,
        test_share=args.test_share,
        winner_by=args.winner_by,
        decide_after=args.decide_after,
        send_winner=args.send_winner,
    )
    spec = new_broadcast(args.name, args.text, _segment(settings, args), default_rate=settings.send_rate,
                         media_urls=tuple(args.media), sender=args.sender, rate=args.rate,
                         quiet_start=start, quiet_end=end or start, default_zone=args.zone,
                         ab=ab)  # fmt: skip
    broadcast_id = await _service(settings, store).create(spec)
    print(
        f"broadcast {broadcast_id} created (draft); next: fanline broadcast preview {broadcast_id}"
    )
    return 0


async def _preview(settings: Any, store: Any, args: argparse.Namespace) -> int:
    p = await _service(settings, store).preview(args.id)
    print(f"recipients:      {p.recipients:,}")
    print(f"held (quiet hrs): {p.held_now:,} right now")
    print(f"segments/text:   {p.segments_per_text} avg, {p.max_segments} max ({p.encoding})")
    print(f"estimated:       {p.estimated_segments:,} segments, ${p.estimated_cost:,.2f}")
    for text in p.sample:
        print(f"  > {text}")
    return 0


async def _send(settings: Any, store: Any, args: argparse.Namespace) -> int:
    service = _service(settings, store)
    await service.send(args.id)
    await _enqueue_with_bar(service, args.id)
    return 0 if args.no_wait else await _watch(service, args.id)


async def _enqueue_with_bar(service: Any, broadcast_id: int) -> None:
    from tqdm import tqdm

    b = await service.get(broadcast_id)
    total = await service.records.count(b.segment)
    with tqdm(total=total, initial=b.enqueued, unit="fan", desc="enqueue") as bar:
        await service.enqueue(broadcast_id, on_chunk=lambda r: bar.update(r.added))


async def _watch(service: Any, broadcast_id: int, interval_s: float = 1.0) -> int:
    """Live progress until nothing of the broadcast is queued or sending (Ctrl-C stops watching)."""
    from tqdm import tqdm

    stats = await service.stats(broadcast_id)
    with tqdm(total=stats.recipients, unit="text", desc="send") as bar:
        while True:
            bar.n = stats.done
            bar.set_postfix(delivered=stats.count("delivered"), failed=stats.count("failed"),
                            held=stats.count("paused"))  # fmt: skip
            bar.refresh()
            if stats.count("queued", "sending") == 0:
                break
            await asyncio.sleep(interval_s)  # a display refresh, not synchronisation
            stats = await service.stats(broadcast_id)
    _print_stats(stats)
    return 0


async def _send_winner(settings: Any, store: Any, args: argparse.Namespace) -> int:
    service = _service(settings, store)
    b = await service.send_winner(args.id, args.variant)
    winner = b.ab.winner if b.ab else None
    print(f"broadcast {b.id}: variant {winner.label if winner else '?'} goes to the rest")
    await service.enqueue(args.id)
    return 0


async def _schedule(settings: Any, store: Any, args: argparse.Namespace) -> int:
    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        raise ConfigError(f"not an ISO 8601 time: {args.at!r}") from None
    b = await _service(settings, store).schedule(args.id, at)
    print(f"broadcast {b.id} is {b.status} for {b.send_at.isoformat() if b.send_at else 'now'}")
    return 0


async def _pause(settings: Any, store: Any, args: argparse.Namespace) -> int:
    print(f"held {await _service(settings, store).pause(args.id)} queued texts")
    return 0


async def _resume(settings: Any, store: Any, args: argparse.Namespace) -> int:
    print(f"released {await _service(settings, store).resume(args.id)} texts")
    return 0


async def _cancel(settings: Any, store: Any, args: argparse.Namespace) -> int:
    print(f"cancelled {await _service(settings, store).cancel(args.id)} texts")
    return 0


async def _status(settings: Any, store: Any, args: argparse.Namespace) -> int:
    service = _service(settings, store)
    if not args.no_wait and (await service.get(args.id)).status in ("enqueuing", "sending"):
        return await _watch(service, args.id)
    _print_stats(await service.stats(args.id))
    return 0


def _print_stats(s: Any) -> None:
    print(f"broadcast {s.broadcast_id}: {s.status}, {s.recipients:,} recipients")
    if s.error:
        print(f"  failed: {s.error}")
    for status, n in sorted(s.by_status.items()):
        print(f"  {status:<12}{n:>10,}")
    for code, n in sorted(s.failed_by_code.items()):
        print(f"  failed {code:<5}{n:>10,}")
    print(
        f"  opted out since {s.opted_out_since:,}; replied {s.replied:,}; segments {s.segments_sent:,}"
    )
    print(f"  clicked {s.clicks:,} (people; link previews and bots not counted)")
    for v in s.variants:
        mark = "  (winner)" if v.winner else ""
        print(f"  variant {v.label}: sent {v.sent:,}, clicks {v.clicks:,} (CTR {v.ctr:.1%}), "
              f"replies {v.replies:,} ({v.reply_rate:.1%}){mark}")  # fmt: skip


async def _list(settings: Any, store: Any, args: argparse.Namespace) -> int:
    for b in await _service(settings, store).all():
        when = b.send_at.isoformat() if b.send_at else "-"
        print(f"{b.id:>5}  {b.status:<10} {b.enqueued:>9,}  {when:<26} {b.name}")
        if b.error:
            print(f"       failed: {b.error}")
    return 0


async def _worker(settings: Any, store: Any, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    print("starting scheduled broadcasts when due (Ctrl-C to stop)")
    await _service(settings, store).run_scheduler(stop)
    return 0


async def _export(settings: Any, store: Any, args: argparse.Namespace) -> int:
    from bot.audience.privacy import export_fan

    text = json.dumps(await export_fan(store, args.number), indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def _erase_command(args: argparse.Namespace) -> int:
    # a script or a pipe cannot answer the question: say so before touching the database
    if not args.yes and not sys.stdin.isatty():
        raise ConfigError(
            "no terminal to confirm the erasure on: add --yes to erase without asking"
        )
    return _run(_erase)(args)


async def _erase(settings: Any, store: Any, args: argparse.Namespace) -> int:
    from bot.audience.privacy import erase_fan

    if not args.yes:
        try:
            answer = await asyncio.to_thread(input, "Erase this fan's data for good? Type ERASE: ")
        except EOFError:  # Ctrl-D
            answer = ""
        if answer.strip() != "ERASE":
            print("nothing erased")
            return 1
    contact_id = await erase_fan(store, args.number)
    print(f"erased contact {contact_id}; the number stays suppressed (hashed)")
    return 0


async def _consent_export(settings: Any, store: Any, args: argparse.Namespace) -> int:
    from bot.audience.consent import export_csv

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since).replace(tzinfo=UTC)
        except ValueError:
            raise ConfigError(f"--since wants YYYY-MM-DD, got {args.since!r}") from None
    rows = await asyncio.to_thread(export_csv, store, args.file, since)
    print(f"wrote {rows:,} consent events to {args.file}", file=sys.stderr)
    return 0


async def _segments(settings: Any, store: Any, args: argparse.Namespace) -> int:
    from bot.audience.segments import load_segments

    service = _service(settings, store)
    for name, segment in load_segments(settings.project_dir / "segments.yml").items():
        count = await service.records.count(segment)
        print(f"{name:<24}{count:>10,}  {segment.description or segment.describe()}")
    return 0


async def _count(settings: Any, store: Any, args: argparse.Namespace) -> int:
    segment = _segment(settings, args)
    print(f"{await _service(settings, store).records.count(segment):,} fans ({segment.describe()})")
    return 0
