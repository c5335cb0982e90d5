"""`fanline import rasa RASA_DIR NEW_DIR` (wired in bot/cli.py): import, report, validate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.errors import ValidationFailed

LEFT_BY_HAND = 3  # exit status: the new line validates; parts of the project are left out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="make a new fan line from another tool's project")
    p.add_argument("source", choices=["rasa"], help="the kind of project (rasa)")
    p.add_argument("rasa_dir", type=Path, metavar="RASA_DIR")
    p.add_argument("new_dir", type=Path, metavar="NEW_DIR")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from bot.content import load_content
    from bot.rasa.importer import import_project

    report = import_project(args.rasa_dir, args.new_dir)
    print(report.format())
    try:
        content = load_content(args.new_dir)
    except ValidationFailed as exc:
        print(f"\nthe new fan line in {args.new_dir} does not validate yet:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {'warning' if p.warning else 'error'}: {p}", file=sys.stderr)
        return 1
    print(f"\n{args.new_dir}: {len(content.flows)} flows, {len(content.intents)} intents; "
          f"next: `fanline --project {args.new_dir} train` and `... test`")  # fmt: skip
    if report.by_hand:  # the line runs, but not all of the project is in it yet
        print(f"{len(report.by_hand)} part(s) left out above to do by hand", file=sys.stderr)
        return LEFT_BY_HAND
    return 0
