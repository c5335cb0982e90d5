"""`fanline teach` and `fanline suggestions list|accept|reject`: teaching the bot from the terminal.

Wired into the `fanline` command by `bot.cli`. `--as USERNAME` acts as that (active, admin)
inbox agent; without it the command acts as the system (agent id 0).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.errors import ConfigError


def register(subparsers: Any) -> None:
    teach = subparsers.add_parser(
        "teach", help="make an FAQ from a topic's or a thread's texts, then retrain"
    )
    source = teach.add_mutually_exclusive_group()
    source.add_argument("--topic", type=int, help="the topic whose texts are the examples")
    source.add_argument(
        "--conversation", type=int, help="the thread whose fan texts are the examples"
    )
    teach.add_argument("--intent", required=True, help="the new intent's name, e.g. ask_parking")
    teach.add_argument("--response", required=True, help="the answer ({first_name} etc. allowed)")
    teach.add_argument("--example", action="append", dest="examples", metavar="TEXT",
                       help="an example text (repeat; instead of the topic's or thread's texts)")  # fmt: skip
    _common(teach)
    teach.set_defaults(func=lambda args: _run(args, _teach))

    sugg = subparsers.add_parser(
        "suggestions", help="agents' labels on bot turns: list, accept, reject"
    )
    sub = sugg.add_subparsers(title="actions", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list suggestions (newest first)")
    ls.add_argument("--status", default="new", choices=["new", "accepted", "rejected", "all"])
    ls.add_argument("--limit", type=int, default=100)
    _common(ls, train=False)
    ls.set_defaults(func=lambda args: _run(args, _list))
    acc = sub.add_parser("accept", help="accept: the text becomes a training example")
    acc.add_argument("id", type=int)
    acc.add_argument("--intent", help="the intent it is an example of (default: the label's)")
    _common(acc)
    acc.set_defaults(func=lambda args: _run(args, _accept))
    rej = sub.add_parser("reject", help="reject: neither an example nor threshold data")
    rej.add_argument("id", type=int)
    _common(rej, train=False)
    rej.set_defaults(func=lambda args: _run(args, _reject))


def _common(p: argparse.ArgumentParser, *, train: bool = True) -> None:
    p.add_argument("--as", dest="as_agent", metavar="USERNAME",
                   help="act as this admin agent (default: the system)")  # fmt: skip
    if train:
        p.add_argument("--no-train", action="store_true",
                       help="edit the content only; `fanline train` later")  # fmt: skip


def _run(args: argparse.Namespace, work: Any) -> int:
    from bot.actions import ActionRunner
    from bot.runtime import _actions_package
    from bot.settings import load_settings
    from bot.storage import Database
    from bot.teach.teacher import Teacher

    settings = load_settings(args.project)
    db = Database(settings.database_url)
    try:
        db.migrate()
        runner = ActionRunner(package=_actions_package(settings.project_dir))
        teacher = Teacher(
            settings.project_dir, model_dir=settings.model_dir, pipeline=settings.nlu_pipeline,
            db=db, actions=runner.known_actions() or None, max_segments=settings.max_segments,
            autotrain=not getattr(args, "no_train", True), lease_ttl_s=settings.lease_ttl_s,
        )  # fmt: skip

        async def go() -> int:
            agent = await _agent(db, settings.secret_key, args.as_agent)
            return await work(args, db, teacher, agent)

        return asyncio.run(go())
    finally:
        db.close()


async def _agent(db: Any, secret_key: bytes, username: str | None) -> Any:
    if not username:
        return None
    from bot.inbox.auth import Auth

    found = [a for a in await Auth(db, secret_key).list_agents() if a.username == username]
    if not found or not found[0].active:
        raise ConfigError(f"no active agent {username!r} (`fanline agents list`)")
    if not found[0].is_admin:
        raise ConfigError(f"{username!r} is not an admin: only admins teach the bot")
    return found[0]


async def _teach(args: argparse.Namespace, db: Any, teacher: Any, agent: Any) -> int:
    from bot.teach.service import teach

    if args.topic is None and args.conversation is None and not args.examples:
        raise ConfigError("give --topic ID, --conversation ID or --example TEXT (repeated)")
    taught = await teach(
        db, teacher, agent, topic_id=args.topic, conversation_id=args.conversation,
        intent=args.intent, response=args.response, examples=args.examples,
    )  # fmt: skip
    print(f"taught {taught.intent} with {len(taught.examples)} examples:")
    for example in taught.examples:
        print(f"  - {example}")
    print(f"changed: {', '.join(taught.files)} (review with `git diff`)")
    return await _trained(args, teacher)


async def _list(args: argparse.Namespace, db: Any, teacher: Any, agent: Any) -> int:
    from bot.teach.service import list_suggestions

    found = await list_suggestions(db, args.status, args.limit)
    if not found:
        print(f"no suggestions ({args.status})")
    for s in found:
        said = f"{s.predicted} {s.confidence:.2f}" if s.confidence is not None else s.predicted
        verdict = f"-> {s.intent}" if s.verdict == "intent" else "-> hand over"
        print(f"{s.id:>5}  {s.status:<8} {verdict:<28} bot: {said or '?':<28} {s.text}")
    return 0


async def _accept(args: argparse.Namespace, db: Any, teacher: Any, agent: Any) -> int:
    from bot.teach.service import accept

    s = await accept(db, teacher, agent, args.id, args.intent)
    what = f"an example of {s.intent}" if s.intent else "real-traffic data (hand over)"
    print(f"accepted {s.id} as {what}")
    return await _trained(args, teacher)


async def _reject(args: argparse.Namespace, db: Any, teacher: Any, agent: Any) -> int:
    from bot.teach.service import reject

    s = await reject(db, agent, args.id)
    print(f"rejected {s.id}")
    return 0


async def _trained(args: argparse.Namespace, teacher: Any) -> int:
    """Wait for the training the change scheduled (or skip it with --no-train)."""
    if args.no_train:
        print("not retrained (--no-train): run `fanline train`")
        return 0
    state = await teacher.wait()
    if state["last_error"]:
        print(f"error: retraining failed: {state['last_error']}")
        return 1
    if state["last_model"]:
        print(f"retrained: model {state['last_model']}, out-of-scope threshold "
              f"{state['last_threshold']:.3f}")  # fmt: skip
    return 0
