"""`fanline topics answers list|show|correct|right|move` against a real database (SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.domain import TurnRecord
from bot.inbox.auth import Auth
from bot.messages import InboundSms, OutboundSms
from bot.storage import Store
from bot.storage.tables import messages
from bot.topics.review_sweep import AnswerSweep
from bot.topics.vectors import NgramVectors

from .conftest import FAST_HASHER, PASSWORD, US
from .test_review_api import MEET


@pytest.fixture
def fanline_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite file with one group of broadcast replies the bot answered, and an agent."""
    url = f"sqlite:///{tmp_path / 'fanline.db'}"
    monkeypatch.setenv("FANLINE_DATABASE_URL", url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")

    async def setup() -> None:
        store = Store.open(url, hash_key=b"cli-test")
        try:
            await Auth(store.db, b"cli-test", hasher=FAST_HASHER).create_agent(
                "ana", PASSWORD, display_name="Ana"
            )
            for i, body in enumerate(MEET):
                phone = f"+1415999{i:04d}"
                rec = await store.record_inbound(InboundSms(f"SMcli{i:029d}", phone, US, body))
                ctx = await store.load_turn(rec.contact.id)
                await store.finish_turn(TurnRecord(
                    rec.contact.id, ctx.conversation_id, rec.message_id, broadcast_id=3,
                    events=[("utter", {"response": "utter_meet_greet"})],
                    replies=[OutboundSms(phone, "Passes: fanline.example/mg", sender=US)]))  # fmt: skip
            await AnswerSweep(store.db, NgramVectors).run_once()  # type: ignore[arg-type]
        finally:
            store.close()

    asyncio.run(setup())
    return url


def fanline(tmp_path: Path, *argv: str) -> int:
    return main(["--project", str(tmp_path), "-q", *argv])


def test_list_show_move_right_and_correct_once(
    fanline_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fanline(tmp_path, "topics", "answers", "list") == 0
    out = capsys.readouterr().out
    assert "1 groups to review, 4 answered texts" in out and "4 fans got utter_meet_greet" in out
    gid = out.splitlines()[1].split()[0]
    assert fanline(tmp_path, "topics", "answers", "show", gid) == 0
    shown = capsys.readouterr().out
    assert "the bot said: Passes: fanline.example/mg" in shown and MEET[0] in shown
    text = next(line.split()[0] for line in shown.splitlines()[2:] if MEET[0] in line)
    assert fanline(tmp_path, "topics", "answers", "move", text, "--new", "--as", "ana") == 0
    new = capsys.readouterr().out.split()[-1]
    assert fanline(tmp_path, "topics", "answers", "right", new, "--as", "ana") == 0
    assert "1 texts reviewed" in capsys.readouterr().out
    argv = ["topics", "answers", "correct", gid, "--body", "Moved to 6pm!", "--key", "k", "--as",
            "ana"]  # fmt: skip
    assert fanline(tmp_path, *argv) == 0 and fanline(tmp_path, *argv) == 0
    assert capsys.readouterr().out.count("queued for 3 fans") == 2  # the retry sends nothing new
    engine = sa.create_engine(fanline_db)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(messages.c.contact_id).where(messages.c.kind == "agent"))
        assert len(rows.all()) == 3
    engine.dispose()
