"""`fanline topics answers list|show|correct|right|move|teach`: the bot's answers to review from a
terminal, through the same service functions as the inbox's "Bot answers" view.

Wired into `fanline topics` by `bot.topics.cli`; off the message's path. Writes act as an inbox
agent (`--as USERNAME`). A correction is queued in the outbox; the running server's sender sends
it (paced, in waking hours, opt-outs checked at send time).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from typing import Any

# the review module (numpy, the inbox, teaching) is imported by each command, not here: parsing
# `fanline ... --help` must not pay for it
STATUSES = ("open", "right", "corrected", "taught")  # review.STATUSES (pinned by a test)


def register(
    topics_sub: Any,
    run: Callable[[Any], Any],
    as_agent: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    answers = topics_sub.add_parser("answers", help="broadcast replies the bot answered: review")
    sub = answers.add_subparsers(title="actions", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="groups of answered texts, most fans first")
    ls.add_argument("--status", choices=[*STATUSES, "all"], default="open")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=run(_list))

    show = sub.add_parser("show", help="one group's texts, what the bot said, corrections")
    show.add_argument("id", type=int)
    show.set_defaults(func=run(_show))

    correct = sub.add_parser("correct", help="one follow-up text to each fan of a group")
    correct.add_argument("id", type=int)
    correct.add_argument("--body", required=True, help="the text; {first_name} etc. per fan")
    correct.add_argument("--key", default=None,
                         help="request key: running the same command again sends nothing twice")  # fmt: skip
    as_agent(correct).set_defaults(func=run(_correct))

    right = sub.add_parser("right", help="the bot answered the group right: nothing to send")
    right.add_argument("id", type=int)
    as_agent(right).set_defaults(func=run(_right))

    move = sub.add_parser("move", help="move texts out of their group")
    move.add_argument("message_ids", type=int, nargs="+", metavar="MESSAGE_ID")
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", type=int, metavar="GROUP_ID", help="a group answered the same way")
    where.add_argument("--new", action="store_true", help="into a new group of their own")
    as_agent(move).set_defaults(func=run(_move))

    teach = sub.add_parser("teach", help="teach the bot from a group's texts (admins)")
    teach.add_argument("id", type=int)
    teach.add_argument("--intent", required=True)
    teach.add_argument("--response", default=None,
                       help="a new FAQ's answer; without it the texts become examples of --intent")  # fmt: skip
    teach.add_argument("--no-train", action="store_true", help="write the files only")
    as_agent(teach).set_defaults(func=run(_teach))


async def _list(ctx: Any, args: argparse.Namespace) -> int:
    from bot.topics import review

    counts = await review.answer_counts(ctx.db)
    print(f"{counts['open_groups']} groups to review, {counts['texts']} answered texts in them")
    for g in await review.list_groups(ctx.db, status=args.status, limit=args.limit):
        print(f"{g.id:>6}  {g.status:<9} {g.headline()}")
    return 0


async def _show(ctx: Any, args: argparse.Namespace) -> int:
    from bot.topics import review

    detail = await review.group(ctx.db, args.id)
    g = detail.group
    print(f"group {g.id} ({g.status}): {g.headline()}")
    print(f"  {g.size} texts from {g.fans} fans; understood as {g.intent or '-'}"
          + (f"; after broadcast {g.broadcast_name or g.broadcast_id}" if g.broadcast_id else ""))  # fmt: skip
    if g.answer:
        print(f"  the bot said: {_oneline(g.answer)}")
    for t in detail.texts:
        mark = "  corrected" if t.corrected else ("  reviewed" if t.reviewed else "")
        print(f"  {t.message_id:>8}  {t.name[:20]:<20} {_oneline(t.body)}{mark}")
    for c in detail.corrections:
        print(f"  correction {c['id']} to {c['fans']} fans: {_oneline(c['body'])}")
    return 0


async def _correct(ctx: Any, args: argparse.Namespace) -> int:
    from bot.topics import review

    agent = await ctx.agent(args.username)
    key = args.key or f"cli-{uuid.uuid4().hex}"
    r = await review.correct(ctx.db, agent, args.id, args.body, request_key=key)
    skipped = f", {len(r.skipped)} skipped (opted out or erased)" if r.skipped else ""
    print(f"correction {r.correction_id}: queued for {r.fans} fans{skipped}")
    return 0


async def _right(ctx: Any, args: argparse.Namespace) -> int:
    from bot.topics import review

    marked = await review.mark_right(ctx.db, await ctx.agent(args.username), args.id)
    print(f"group {args.id} marked right ({marked} texts reviewed)")
    return 0


async def _move(ctx: Any, args: argparse.Namespace) -> int:
    from bot.topics import review

    agent = await ctx.agent(args.username)
    to = await review.move_texts(ctx.db, agent, args.message_ids, None if args.new else args.to)
    print(f"moved to group {to}")
    return 0


async def _teach(ctx: Any, args: argparse.Namespace) -> int:
    from bot.actions import ActionRunner
    from bot.runtime import _actions_package
    from bot.teach.teacher import Teacher
    from bot.topics import review

    agent = await ctx.agent(args.username)
    s = ctx.settings  # the teacher `fanline teach` makes: the line's model, pipeline, actions
    runner = ActionRunner(package=_actions_package(s.project_dir))
    teacher = Teacher(s.project_dir, model_dir=s.model_dir, pipeline=s.nlu_pipeline, db=ctx.db,
                      actions=runner.known_actions() or None, max_segments=s.max_segments,
                      autotrain=not args.no_train)  # fmt: skip
    taught = await review.teach(ctx.db, teacher, agent, args.id, intent=args.intent,
                                response=args.response)  # fmt: skip
    print(f"taught {taught.intent} from {len(taught.examples)} texts: {', '.join(taught.files)}")
    if teacher.autotrain:
        await teacher.wait()
    return 0


def _oneline(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 70 else flat[:69] + "…"
