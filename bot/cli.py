"""The `fanline` command: run, shell, train, validate, test, init, db, agents, fans, segments, broadcast.

User mistakes (bad content, missing files) print a clear message and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from bot import logs
from bot.errors import ConfigError, FanlineError, ValidationFailed

# everything a line reads (tests/cli/test_new_user.py checks that a new line passes its own tests)
DEMO_FILES = ("flows", "data", "actions", "domain.yml", "domain", "config.yml", "endpoints.yml",
              "segments.yml", "canned_replies.yml", "reactions.yml", "credentials.yml",
              "tests/conversations")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logs.configure(level=logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except ValidationFailed as exc:
        _print_problems(exc.problems)
        return 2
    except (ConfigError, FanlineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fanline", description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, default=Path("."), help="fan line folder (default: .)")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="start the server (webhooks, simulator, inbox)")
    run.add_argument("--host"), run.add_argument("--port", type=int)
    run.add_argument("--workers", type=int, help="server processes (PostgreSQL for more than 1)")
    run.add_argument("--role", choices=["all", "web", "worker"],
                     help="web: webhooks, inbox, signups; worker: sending and background jobs; "
                     "all (default): both (web and worker apart need PostgreSQL)")  # fmt: skip
    run.add_argument("--no-migrate", action="store_true",
                     help="leave the schema as it is (run `fanline db upgrade` as its own step)")  # fmt: skip
    run.set_defaults(func=cmd_run)

    shell = sub.add_parser("shell", help="text the bot as a fan, in this terminal")
    shell.add_argument("--number", default="+15555550123", help="the fan's phone number")
    shell.add_argument("--debug", action="store_true", help="show intent, confidence, flow, step")
    shell.set_defaults(func=cmd_shell)

    train = sub.add_parser("train", help="train the NLU model (skipped when nothing changed)")
    train.add_argument("--force", action="store_true", help="train even if nothing changed")
    train.set_defaults(func=cmd_train)

    val = sub.add_parser("validate", help="check flows, responses, NLU data and config")
    val.set_defaults(func=cmd_validate)

    test = sub.add_parser("test", help="run conversation tests, or `test nlu` for the NLU report")
    test.add_argument(
        "paths", nargs="*", metavar="[nlu | conversations] [FILE ...]",
        help="`nlu` for the NLU report; else conversation test files (default: tests/conversations)",
    )  # fmt: skip
    test.add_argument("--folds", type=int, default=5, help="nlu: cross-validation folds")
    test.set_defaults(func=cmd_test)

    init = sub.add_parser("init", help="create a new fan line from the demo")
    init.add_argument("dir", type=Path)
    init.set_defaults(func=cmd_init)

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "current"],
                    help="upgrade: apply migrations; current: the schema's revision and the code's")  # fmt: skip
    db.set_defaults(func=cmd_db)

    from bot.audience.broadcast_cli import register_broadcast, register_fans, register_segments
    from bot.audience.report_cli import register_report
    from bot.outbox_cli import register_outbox
    from bot.rasa.cli import register as register_import
    from bot.teach.cli import register as register_teach
    from bot.topics.cli import register as register_topics

    for register in (
        register_broadcast,
        register_fans,
        register_segments,
        register_outbox,
        register_report,
        register_import,
        register_teach,
        register_topics,
    ):
        register(sub)
    try:
        from bot.inbox.cli import register as register_agents
    except ImportError:  # the inbox is optional at import time only while it is being built
        pass
    else:
        register_agents(sub)
    return p


def _settings(args: argparse.Namespace) -> Any:
    from bot.settings import load_settings

    return load_settings(args.project)


def cmd_run(args: argparse.Namespace) -> int:
    from functools import partial

    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from bot.app import create_app
    from bot.runtime import Runtime

    settings = _settings(args)
    logs.configure(
        json_lines=settings.log_json, level=logging.WARNING if args.quiet else logging.INFO
    )
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("workers", args.workers), ("role", args.role)) if v}  # fmt: skip
    if args.no_migrate:
        overrides["migrate_on_start"] = False
    if overrides:
        from dataclasses import replace

        derived = settings.public_url == f"http://{settings.host}:{settings.port}"
        settings = replace(settings, **overrides)
        if derived:  # no public_url was configured: it follows --host / --port
            settings = replace(settings, public_url=f"http://{settings.host}:{settings.port}")
    from bot.roles import check_role

    check_role(settings.role, settings.database_url)
    if settings.workers > 1 and settings.database_url.startswith("sqlite"):
        # per-fan order across processes needs PostgreSQL's advisory locks
        raise ConfigError(
            "more than one worker needs PostgreSQL: set FANLINE_DATABASE_URL "
            "(or tracker_store.url in endpoints.yml) to a postgresql:// URL"
        )
    taken = _port_taken(settings.host, settings.port)
    if taken:  # before the model loads: a second `fanline run` fails at once, in one line
        print(f"error: cannot listen on {settings.host}:{settings.port}: {taken} "
              "(another `fanline run`?); choose one with --port", file=sys.stderr)  # fmt: skip
        return 1
    # fail fast, in the terminal, on invalid content or a broken model: before any worker starts
    runtime = asyncio.run(Runtime.start(settings))
    asyncio.run(runtime.close())
    mode = "local simulator" if settings.local_mode else "Twilio"
    banner = (
        f"Fanline on {settings.public_url} ({mode}); simulator: {settings.public_url}/simulator"
    )
    if settings.log_json:  # every line JSON, the banner too
        logging.getLogger("bot.cli").info("%s", banner)
    else:
        print(banner)
    loader = AppLoader(factory=partial(create_app, settings))
    app = loader.load()
    single = settings.workers == 1  # one process, no worker manager: the embedded default
    app.prepare(host=settings.host, port=settings.port, workers=settings.workers,
                single_process=single, access_log=False, motd=False)  # fmt: skip
    if single:
        Sanic.serve_single(primary=app)
    else:
        from sanic.worker.manager import WorkerManager

        # Sanic gives workers 30 s to come up, then shuts everything down; loading the NLU
        # model in each of several workers on a busy machine can take longer (Sanic has no
        # setting for it: the class attribute, in tenths of a second, is the knob)
        WorkerManager.THRESHOLD = max(WorkerManager.THRESHOLD, 1800)
        Sanic.serve(primary=app, app_loader=loader)
    return 0


def _port_taken(host: str, port: int) -> str | None:
    """Why the server could not listen there (None: it can), bound as Sanic binds."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def cmd_shell(args: argparse.Namespace) -> int:
    return asyncio.run(_shell(_settings(args), args.number, args.debug))


async def _shell(settings: Any, number: str, debug: bool) -> int:
    from bot.channels.twilio_webhook import parse_inbound
    from bot.runtime import Runtime

    runtime = await Runtime.start(settings)
    print("Text the bot as a fan (Ctrl-D to quit). STOP, START and HELP work as on a phone.")
    try:
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print()
                return 0
            form = {"From": number, "To": "+15550100000", "Body": line,
                    "MessageSid": "SM" + uuid.uuid4().hex}  # fmt: skip
            # the shell is the phone: replies are delivered here, inline, not by the sender
            outcome = await runtime.handle(parse_inbound(form), inline_s=3600)
            if debug:
                _print_debug(outcome)
            for q in outcome.replies:
                print(f"bot> {q.reply.body}" + "".join(f" [{u}]" for u in q.reply.media_urls))
            if outcome.held:
                print("   (a person from the team has this conversation; the bot stays quiet)")
    finally:
        await runtime.close()


def _print_debug(outcome: Any) -> None:
    p = outcome.prediction
    if p is not None:
        print(
            f"   intent={p.intent} confidence={p.confidence:.2f} entities={[e.entity for e in p.entities]}"
        )
    for kind, data in outcome.events:
        if kind in (
            "flow_started",
            "flow_ended",
            "step",
            "slot_set",
            "escalated",
            "compliance",
            "action",
        ):
            print(f"   {kind}: {data}")


def cmd_train(args: argparse.Namespace) -> int:
    from bot.nlu.cli import train_command
    from bot.teach.service import training_traffic

    settings = _settings(args)
    # agents' labels on real fan texts, for the out-of-scope threshold (None: no database)
    traffic = training_traffic(settings.database_url)
    code = train_command(settings.project_dir, settings.project_dir / "config.yml",
                         settings.model_dir, args.force, settings.nlu_pipeline,
                         traffic=traffic, beside=_phrase_model_beside)  # fmt: skip
    if code == 0:  # the line's compliance phrase model, beside the NLU model, and its report
        _compliance_report(settings, save=True)
    return code


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.actions import ActionRunner
    from bot.content import load_content
    from bot.runtime import _actions_package

    settings = _settings(args)
    # with an action server, actions/ is its code (and its dependencies): not imported here
    package = None if settings.action_endpoint else _actions_package(settings.project_dir)
    runner = ActionRunner(package=package)
    content = load_content(settings.project_dir, actions=runner.known_actions() or None,
                           max_segments=settings.max_segments)  # fmt: skip
    _print_problems(list(content.warnings))
    _compliance_report(settings, content.nlu_data)
    print(f"ok: {len(content.flows)} flows, {len(content.domain.responses)} responses, "
          f"{len(content.intents)} intents")  # fmt: skip
    return 0


def _phrase_model_beside(data: Any, folder: Path) -> None:
    """The line's compliance phrase model, written with the NLU model before it is published."""
    from bot.compliance import line

    line.ensure(data, folder)


def _compliance_report(settings: Any, data: Any = None, save: bool = False) -> None:
    """Warnings for the line's examples that STOP / START / HELP would take (bot.compliance.line)."""
    from bot.compliance import line
    from bot.nlu.config import project_config
    from bot.nlu.data import load_training_data
    from bot.nlu.model import model_dir_for
    from bot.nlu.train import fingerprint

    if data is None:
        data = load_training_data([settings.project_dir / "data"])
    cfg = project_config(settings.project_dir / "config.yml", settings.nlu_pipeline)
    model_dir = model_dir_for(settings.model_dir, fingerprint(cfg, data))
    found = line.report(data, model_dir, settings.compliance, save=save)
    _print_problems(found)
    taken = sum(1 for p in found if "never reaches" in str(p))
    off = "" if settings.compliance.phrase_model else " (phrase model off)"
    print(f"compliance: {taken} of {len(data.examples)} training examples would be taken as "
          f"STOP/START/HELP{off}")  # fmt: skip


def _print_problems(problems: list[ConfigError]) -> None:
    for p in problems:
        label = "warning" if p.warning else "error"
        print(f"{label}: {p}", file=sys.stderr)


def cmd_test(args: argparse.Namespace) -> int:
    settings = _settings(args)
    what = args.paths[0] if args.paths and args.paths[0] in ("nlu", "conversations") else None
    paths = [Path(p) for p in (args.paths[1:] if what else args.paths)]
    if what == "nlu":
        from bot.nlu.cli import test_command

        out = settings.project_dir / "results" / "nlu"
        return test_command(
            settings.project_dir, settings.project_dir / "config.yml", out, args.folds,
            test_files=paths or None,
            pipeline=settings.nlu_pipeline,
        )  # fmt: skip
    return asyncio.run(_conversation_tests(settings, paths))


async def _conversation_tests(settings: Any, paths: list[Path]) -> int:
    import tempfile

    from bot.conversation_tests import discover, load_cases, run_case
    from bot.runtime import Runtime

    files = paths or discover(settings.project_dir)
    cases = load_cases(files)
    if not cases:
        where = ", ".join(str(p) for p in files) or str(
            settings.project_dir / "tests/conversations"
        )
        print(f"error: no tests found in {where} (a test file has `test_cases:`, or Rasa test "
              "stories with `user:` steps)", file=sys.stderr)  # fmt: skip
        return 1
    with tempfile.TemporaryDirectory() as tmp:  # a throwaway database: tests never touch fans
        runtime = await Runtime.start(settings, database_url=f"sqlite:///{tmp}/test.db")
        try:
            results = [await run_case(runtime, case) for case in cases]
        finally:
            await runtime.close()
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"FAILED {r.case.name} ({r.case.file}:{r.case.line})")
        for f in r.failures:
            print(f"    {f}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_init(args: argparse.Namespace) -> int:
    source = Path(__file__).resolve().parent.parent
    target: Path = args.dir
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty")
    if not (source / "flows").is_dir():
        raise ConfigError("the demo content is not available in this installation")
    for name in DEMO_FILES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)
    print(
        f"created {target}: edit flows/, domain.yml and data/, then `fanline --project {target} shell`"
    )
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.ops import head_revision, schema_revision
    from bot.storage import Database

    db = Database(_settings(args).database_url)
    try:
        if args.action == "current":
            with db.engine.connect() as conn:
                current = schema_revision(conn)
            print(f"schema: {current or 'empty'}; code: {head_revision()}")
            return 0 if current == head_revision() else 1
        db.migrate()
    finally:
        db.close()
    print("database schema is up to date")
    return 0
