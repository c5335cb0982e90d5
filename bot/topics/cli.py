"""`fanline topics list|show|reply|move|merge|rename|regroup`: topics of waiting texts from a
terminal, through the same service functions as the inbox.

Wired into the `fanline` command by `bot.cli`; off the message's path. Writes act as an inbox
agent (`--as USERNAME`), so each thread records who answered. A reply is queued in the outbox;
the running server's sender sends it (paced, in waking hours, opt-outs checked at send time).
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from bot.errors import ConfigError


def register(subparsers: Any) -> argparse.ArgumentParser:
    topics = subparsers.add_parser("topics", help="topics of waiting texts: list, reply to many")
    sub = topics.add_subparsers(title="actions", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="open topics, largest first")
    ls.add_argument("--order", choices=["size", "wait"], default="size")
    ls.add_argument("--status", choices=["open", "answered", "merged", "all"], default="open")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_run(_list))

    show = sub.add_parser("show", help="one topic's texts and replies")
    show.add_argument("id", type=int)
    show.set_defaults(func=_run(_show))

    reply = sub.add_parser("reply", help="answer every fan in a topic (one text per fan)")
    reply.add_argument("id", type=int)
    reply.add_argument("--body", required=True, help="the text; {first_name} etc. per fan")
    reply.add_argument("--auto-minutes", type=int, default=None, metavar="N",
                       help="also answer new texts in this topic for N minutes")  # fmt: skip
    reply.add_argument("--key", default=None,
                       help="request key: running the same command again sends nothing twice")  # fmt: skip
    _as(reply).set_defaults(func=_run(_reply))

    move = sub.add_parser("move", help="move texts to another topic, or split them off")
    move.add_argument("message_ids", type=int, nargs="+", metavar="MESSAGE_ID")
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", type=int, metavar="TOPIC_ID", help="the topic to move them to")
    where.add_argument("--new", action="store_true", help="split them into a new topic")
    _as(move).set_defaults(func=_run(_move))

    merge = sub.add_parser("merge", help="merge topic ID into topic INTO")
    merge.add_argument("id", type=int)
    merge.add_argument("into", type=int)
    _as(merge).set_defaults(func=_run(_merge))

    rename = sub.add_parser("rename", help="give a topic a label of your own")
    rename.add_argument("id", type=int)
    rename.add_argument("label")
    _as(rename).set_defaults(func=_run(_rename))

    regroup = sub.add_parser("regroup", help="group the waiting texts afresh")
    regroup.set_defaults(func=_run(_regroup))

    from bot.topics import review_cli  # `fanline topics answers ...`: the bot's answers to review

    review_cli.register(sub, _run, _as)
    return topics


def _as(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--as", dest="username", required=True, metavar="USERNAME",
                   help="the inbox agent this is done as (`fanline agents list`)")  # fmt: skip
    return p


class _Context:
    def __init__(self, settings: Any, db: Any):
        self.settings, self.db = settings, db

    async def agent(self, username: str) -> Any:
        from bot.inbox.auth import Auth

        for a in await Auth(self.db, self.settings.secret_key).list_agents():
            if a.username == username.lower():
                if not a.active:
                    raise ConfigError(f"agent {a.username!r} is disabled")
                return a
        raise ConfigError(f"no agent {username!r}: see `fanline agents list`")


def _run(handler: Any) -> Any:
    def command(args: argparse.Namespace) -> int:
        from bot.settings import load_settings
        from bot.storage import Database

        settings = load_settings(args.project)
        db = Database(settings.database_url)
        try:
            db.migrate()
            return int(asyncio.run(handler(_Context(settings, db), args)) or 0)
        finally:
            db.close()

    return command


async def _list(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    counts = await service.topic_counts(ctx.db)
    items = await service.list_topics(ctx.db, status=args.status, order=args.order,
                                      limit=args.limit)  # fmt: skip
    print(f"{counts['open_topics']} open topics, {counts['waiting_texts']} texts waiting"
          f"{', ' + str(counts['ungrouped']) + ' not grouped yet' if counts['ungrouped'] else ''}")  # fmt: skip
    for t in (i.to_json() for i in items):
        wait = _ago(t["waiting_s"]) if t.get("waiting_s") is not None else "-"
        extra = f"  auto until {t['auto_until'][:16]}" if t.get("auto_until") else ""
        print(f"{t['id']:>6}  {t['size']:>5} texts {t['fans']:>5} fans  oldest {wait:>7}  "
              f"{t['status']:<8} {t['label'] or '(no label)'}{extra}")  # fmt: skip
    return 0


async def _show(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    detail = await service.topic(ctx.db, args.id)
    s = detail.summary.to_json()
    print(f"topic {s['id']} ({s['status']}): {s['label'] or '(no label)'}")
    print(f"  {s['size']} texts from {s['fans']} fans"
          + (f", answers broadcast {s['broadcast_id']}" if s.get("broadcast_id") else "")
          + (f", auto-reply until {s['auto_until'][:16]}" if s.get("auto_until") else ""))  # fmt: skip
    if s["guesses"]:
        print(
            "  the bot's guesses: " + ", ".join(f"{i} {round(c * 100)}%" for i, c in s["guesses"])
        )
    for t in detail.texts:
        done = "  answered" if t.done_at else ""
        print(f"  {t.message_id:>8}  {t.name[:20]:<20} {_oneline(t.body)}{done}")
    for r in detail.replies:
        print(f"  reply {r['id']} to {r['fans']} fans: {_oneline(r['body'])}")
    return 0


async def _reply(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    agent = await ctx.agent(args.username)
    key = args.key or f"cli-{uuid.uuid4().hex}"
    result = await service.reply_to_topic(ctx.db, agent, args.id, args.body, request_key=key,
                                          auto_minutes=args.auto_minutes)  # fmt: skip
    r = result.to_json()
    skipped = len(r["skipped"])
    print(f"reply {r['reply_id']}: queued for {r['fans']} fans"
          + (f", {skipped} skipped (claimed by another agent, or opted out)" if skipped else "")
          + (f"; auto-reply until {r['auto_until'][:16]}" if r.get("auto_until") else ""))  # fmt: skip
    return 0


async def _move(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    agent = await ctx.agent(args.username)
    moved = await service.move_texts(ctx.db, agent, args.message_ids, None if args.new else args.to)
    print(f"moved {moved}" if not args.new else f"split into a new topic: {moved}")
    return 0


async def _merge(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    await service.merge(ctx.db, await ctx.agent(args.username), args.id, args.into)
    print(f"topic {args.id} merged into {args.into}")
    return 0


async def _rename(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.topics import service

    await service.rename(ctx.db, await ctx.agent(args.username), args.id, args.label)
    print(f"topic {args.id} is now {args.label!r}")
    return 0


async def _regroup(ctx: _Context, args: argparse.Namespace) -> int:
    from bot.content import load_content
    from bot.runtime import ensure_model
    from bot.topics import service
    from bot.topics.sweep import TopicSweep
    from bot.topics.vectors import vectoriser_for

    # the vectors of the model the server runs (`fanline train` made it; this never trains)
    content = await asyncio.to_thread(load_content, ctx.settings.project_dir,
                                      max_segments=ctx.settings.max_segments)  # fmt: skip
    interpreter = await asyncio.to_thread(ensure_model, ctx.settings, content, False)
    sweep = TopicSweep(ctx.db, lambda: vectoriser_for(interpreter), ctx.settings.topics)
    r = (await service.regroup(ctx.db, sweep)).to_json()
    print(f"re-grouped: {r['created']} new topics; {r['done']} texts found answered")
    return 0


def _oneline(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 70 else flat[:69] + "…"


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
