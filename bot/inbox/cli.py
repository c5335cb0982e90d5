"""`fanline agents add|list|disable|enable`: the people who answer fans in the inbox.

Wired into the `fanline` command by `bot.cli`; off the message's path.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from bot.errors import ConfigError


def register(subparsers: Any) -> argparse.ArgumentParser:
    agents = subparsers.add_parser("agents", help="manage inbox agents (add, list, disable)")
    sub = agents.add_subparsers(title="actions", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add an agent (asks for the password)")
    add.add_argument("username", help="login name: letters, digits, '.', '_' or '-'")
    add.add_argument("--name", default="", help="name shown to other agents")
    add.add_argument("--role", choices=["agent", "admin"], default="agent",
                     help="admins also manage agents (default: agent)")  # fmt: skip
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (for scripts)")  # fmt: skip
    add.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", help="list agents")
    ls.set_defaults(func=cmd_list)

    for state in ("disable", "enable"):
        p = sub.add_parser(state, help=f"{state} an agent (disabling logs them out everywhere)")
        p.add_argument("username")
        p.set_defaults(func=cmd_set_active, active=state == "enable")
    return agents


def _run(args: argparse.Namespace, work: Any) -> Any:
    from bot.inbox.auth import Auth
    from bot.settings import load_settings
    from bot.storage import Database

    settings = load_settings(args.project)
    db = Database(settings.database_url)
    try:
        db.migrate()
        return asyncio.run(work(Auth(db, settings.secret_key)))
    finally:
        db.close()


def cmd_add(args: argparse.Namespace) -> int:
    if not args.password_stdin and not sys.stdin.isatty():
        raise ConfigError(
            "no terminal to ask for the password on: add --password-stdin and give the "
            "password as the first line of stdin"
        )
    password = _read_password(args.password_stdin)
    agent = _run(args, lambda auth: auth.create_agent(args.username, password, role=args.role,
                                                      display_name=args.name))  # fmt: skip
    print(f"added {agent.role} {agent.username!r} (id {agent.id})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    agents = _run(args, lambda auth: auth.list_agents())
    if not agents:
        print("no agents yet: `fanline agents add NAME --role admin`")
    for a in agents:
        state = "active" if a.active else "disabled"
        print(f"{a.id:>4}  {a.username:<24} {a.role:<6} {state:<9} {a.display_name}")
    return 0


def cmd_set_active(args: argparse.Namespace) -> int:
    agent = _run(args, lambda auth: auth.set_active(args.username, args.active))
    print(f"{agent.username!r} is now {'active' if agent.active else 'disabled'}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except EOFError:  # Ctrl-D at the prompt
        raise ConfigError("no password given") from None
    if first != again:
        raise ConfigError("the passwords differ")
    return first
