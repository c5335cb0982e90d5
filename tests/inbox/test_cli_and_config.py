"""`fanline agents ...` and the inbox's configuration files (canned replies, `inbox:` section)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from bot.errors import ConfigError, FanlineError
from bot.inbox import cli
from bot.inbox.config import load_canned_replies, load_inbox_config

ROOT = Path(__file__).resolve().parents[2]


def run(project: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="fanline")
    parser.add_argument("--project", type=Path)
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["--project", str(project), *argv])
    return args.func(args)


def test_agents_add_list_disable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FANLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'f.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert (
        run(
            tmp_path,
            "agents",
            "add",
            "Robin",
            "--role",
            "admin",
            "--name",
            "Robin R",
            "--password-stdin",
        )
        == 0
    )
    assert "added admin 'robin'" in capsys.readouterr().out
    assert run(tmp_path, "agents", "disable", "robin") == 0
    assert run(tmp_path, "agents", "list") == 0
    out = capsys.readouterr().out
    assert "robin" in out and "disabled" in out and "Robin R" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(FanlineError, match="at least 10"):  # bot.cli prints it, exit code 2
        run(tmp_path, "agents", "add", "sam", "--password-stdin")


def test_the_demo_canned_replies_load() -> None:
    replies = load_canned_replies(ROOT / "canned_replies.yml")
    assert len(replies) >= 3 and all(r.text for r in replies)
    hello = next(r for r in replies if r.key == "hello")
    assert hello.for_fan("Maya").startswith("Hi Maya,") and "{first_name}" not in hello.for_fan(
        None
    )


def test_canned_reply_mistakes_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "canned_replies.yml"
    path.write_text("canned_replies:\n  ok:\n    text: fine\n  broken:\n    title: No text\n")
    with pytest.raises(ConfigError) as err:
        load_canned_replies(path)
    assert err.value.location is not None
    assert (err.value.location.line, err.value.location.key) == (4, "canned_replies.broken")


def test_a_webhook_needs_a_secret(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "inbox:\n  session_hours: 8\n  webhook_url: https://chat.example/hook\n"
    )
    with pytest.raises(ConfigError, match="webhook_secret") as err:
        load_inbox_config(tmp_path)
    assert err.value.location is not None and err.value.location.line == 3
    (tmp_path / "config.yml").write_text(
        "inbox:\n  session_hours: 8\n  webhook_url: https://chat.example/hook\n  webhook_secret: s3cret\n"
    )
    config = load_inbox_config(tmp_path)
    assert (config.session_hours, config.webhook_secret) == (8.0, b"s3cret")
