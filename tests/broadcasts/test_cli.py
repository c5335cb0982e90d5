"""The broadcast, fans and segments commands, run as argparse commands on a real project folder."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from bot.audience.broadcast_cli import register_broadcast, register_fans, register_segments
from bot.outbox_cli import register_outbox
from bot.storage import Store
from tests.broadcasts.helpers import add_fans, number


def run(project: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path)
    sub = parser.add_subparsers()
    for register in (register_broadcast, register_fans, register_segments, register_outbox):
        register(sub)
    args = parser.parse_args(["--project", str(project), *argv])
    return int(args.func(args))


def test_the_commands_end_to_end(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")
    (tmp_path / "segments.yml").write_text("segments:\n  vip:\n    tags: [vip]\n")
    store = Store.open(database_url, hash_key=b"cli-test")
    try:
        asyncio.run(add_fans(store, [
            {"phone": number(1), "profile": {"first_name": "Ana", "tags": ["vip"]}},
            {"phone": number(2), "profile": {"tags": []}},
        ]))  # fmt: skip
    finally:
        store.close()

    assert run(tmp_path, "segments", "list") == 0
    assert "vip" in capsys.readouterr().out
    assert run(tmp_path, "segments", "count", "--where", "tags=vip") == 0
    assert capsys.readouterr().out.startswith("1 fans")
    assert run(tmp_path, "broadcast", "create", "tour", "--text", "Hi {first_name|friend}!",
               "--segment", "vip", "--quiet-hours", "00:00-00:00") == 0  # fmt: skip
    assert "broadcast 1 created" in capsys.readouterr().out
    assert run(tmp_path, "broadcast", "preview", "1") == 0
    assert "Hi Ana!" in capsys.readouterr().out
    assert run(tmp_path, "broadcast", "send", "1", "--no-wait") == 0
    assert run(tmp_path, "broadcast", "status", "1", "--no-wait") == 0
    out = capsys.readouterr().out
    assert "1 recipients" in out and "queued" in out

    assert run(tmp_path, "fans", "export", number(1)) == 0
    assert json.loads(capsys.readouterr().out)["contact"]["profile"]["first_name"] == "Ana"
    assert run(tmp_path, "fans", "erase", number(1), "--yes") == 0
    assert run(tmp_path, "fans", "consent-export", str(tmp_path / "ledger.csv")) == 0
    assert (tmp_path / "ledger.csv").read_text().startswith("id,contact_id,action")
