"""`fanline topics list|show|reply|move|merge|rename|regroup` against a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.inbox.auth import Auth
from bot.storage import Store
from bot.storage.tables import contacts, messages
from bot.topics.sweep import TopicSweep
from bot.topics.vectors import NgramVectors

from .conftest import FAST_HASHER, PASSWORD, escalate
from .test_topics_api import DENVER, REFUND, open_zone

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fanline_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite file with two topics of waiting texts and an agent, as the server leaves it."""
    url = f"sqlite:///{tmp_path / 'fanline.db'}"
    monkeypatch.setenv("FANLINE_DATABASE_URL", url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")

    async def setup() -> None:
        store = Store.open(url, hash_key=b"cli-test")
        try:
            await Auth(store.db, b"cli-test", hasher=FAST_HASHER).create_agent(
                "ana", PASSWORD, display_name="Ana"
            )
            for i, body in enumerate(DENVER + REFUND):
                await escalate(store, f"+1415888{i:04d}", body)
            await store.db.run(lambda c: c.execute(contacts.update().values(
                profile={"first_name": "Sam", "timezone": open_zone()})))  # fmt: skip
            await TopicSweep(store.db, NgramVectors).run_once()
        finally:
            store.close()

    asyncio.run(setup())
    return url


def fanline(tmp_path: Path, *argv: str) -> int:
    return main(["--project", str(tmp_path), "-q", *argv])


def topic_ids(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.strip()]


def test_list_show_rename_move_merge(
    fanline_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fanline(tmp_path, "topics", "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{len(topic_ids(out))} open topics, 7 texts waiting")
    ids = topic_ids(out)
    shown = {}
    for tid in ids:
        assert fanline(tmp_path, "topics", "show", str(tid)) == 0
        shown[tid] = capsys.readouterr().out
    denver = next(t for t, text in shown.items() if DENVER[0] in text)
    refund = next(t for t, text in shown.items() if REFUND[0] in text)
    assert denver != refund

    assert fanline(tmp_path, "topics", "rename", str(denver), "Denver tonight", "--as", "ana") == 0
    assert "is now 'Denver tonight'" in capsys.readouterr().out
    line = next(ln for ln in shown[denver].splitlines() if DENVER[1] in ln)
    message_id = line.split()[0]
    assert fanline(tmp_path, "topics", "move", message_id, "--new", "--as", "ana") == 0
    split = int(capsys.readouterr().out.rsplit(":", 1)[1])
    assert fanline(tmp_path, "topics", "merge", str(split), str(denver), "--as", "ana") == 0
    assert f"topic {split} merged into {denver}" in capsys.readouterr().out
    assert fanline(tmp_path, "topics", "show", str(denver)) == 0
    out = capsys.readouterr().out
    assert "Denver tonight" in out and all(text in out for text in DENVER)

    assert fanline(tmp_path, "topics", "rename", str(denver), "x", "--as", "nobody") == 2
    assert "no agent 'nobody'" in capsys.readouterr().err
    assert fanline(tmp_path, "topics", "show", "999999") == 2
    assert "no such topic" in capsys.readouterr().err


def test_reply_queues_one_text_per_fan_once_even_when_run_twice(
    fanline_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fanline(tmp_path, "topics", "list")
    ids = topic_ids(capsys.readouterr().out)
    for tid in ids:
        fanline(tmp_path, "topics", "show", str(tid))
        if REFUND[0] in capsys.readouterr().out:
            break
    argv = ["topics", "reply", str(tid), "--body", "Hi {first_name}! Refunds: fanline.example/r",
            "--auto-minutes", "30", "--as", "ana", "--key", "refund-cli-1"]  # fmt: skip
    assert fanline(tmp_path, *argv) == 0
    out = capsys.readouterr().out
    assert f"queued for {len(REFUND)} fans" in out and "auto-reply until" in out
    assert fanline(tmp_path, *argv) == 0  # run again (a retry): the same reply, nothing new
    assert f"queued for {len(REFUND)} fans" in capsys.readouterr().out
    engine = sa.create_engine(fanline_db)
    with engine.connect() as conn:
        bodies = conn.execute(sa.select(messages.c.body).where(messages.c.kind == "agent")).all()
    engine.dispose()
    assert [b for (b,) in bodies] == ["Hi Sam! Refunds: fanline.example/r"] * len(REFUND)
    with pytest.raises(SystemExit):  # who answers is recorded: --as is required
        fanline(tmp_path, "topics", "reply", str(tid), "--body", "x")
    assert "--as" in capsys.readouterr().err


def test_regroup_uses_the_trained_model(
    fanline_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(ROOT), "-q", "topics", "regroup"]) == 0
    assert "re-grouped" in capsys.readouterr().out
    assert main(["--project", str(ROOT), "-q", "topics", "list"]) == 0
    assert "7 texts waiting" in capsys.readouterr().out
