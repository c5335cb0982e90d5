"""`fanline suggestions list|accept|reject`, `fanline teach` and `fanline train` with labels."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.inbox.auth import Agent
from bot.teach import Teacher, label_turn
from bot.teach.content_writer import DOMAIN_FILE, NLU_FILE
from tests.teach.conftest import PIPELINE
from tests.teach.test_teach import send, start, subscribed_fan

AGENT = Agent(8, "bo", "Bo", "agent")


def fanline(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--project", str(project), "-q", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


async def labelled(project: Path, database_url: str) -> list[int]:
    """Three labels on real turns: two hand-overs, one 'should have answered ask_tour_dates'."""
    rt = await start(project, database_url)
    try:
        fan = await subscribed_fan(rt)
        turns = [await send(rt, fan, t) for t in ("is there parking near the arena?",
                                                  "is there a coat check", "whens she on stage")]  # fmt: skip
        db = rt.store.db
        return [await label_turn(db, AGENT, turns[0].message_id, "handover"),
                await label_turn(db, AGENT, turns[1].message_id, "handover"),
                await label_turn(db, AGENT, turns[2].message_id, "intent", "ask_tour_dates")]  # fmt: skip
    finally:
        await rt.close()


def test_suggestions_teach_and_train_from_the_command_line(
    trained_project: Path, database_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    project = trained_project
    for key, value in {"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test",
                       "FANLINE_NLU_PIPELINE": PIPELINE}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    parking, coat, stage = asyncio.run(labelled(project, database_url))

    code, out = fanline(project, capsys, "suggestions", "list")
    assert code == 0
    lines = out.splitlines()
    assert [int(line.split()[0]) for line in lines] == [stage, coat, parking]
    assert "-> ask_tour_dates" in lines[0] and "whens she on stage" in lines[0]
    assert "-> hand over" in lines[2] and "is there parking near the arena?" in lines[2]

    assert fanline(project, capsys, "suggestions", "reject", str(coat)) == (0, f"rejected {coat}\n")
    code, out = fanline(project, capsys, "suggestions", "accept", str(stage), "--no-train")
    assert code == 0 and "an example of ask_tour_dates" in out
    assert "- whens she on stage" in (project / NLU_FILE).read_text()
    code, out = fanline(project, capsys, "suggestions", "accept", str(coat))
    assert code == 2 and "rejected already" in out
    code, out = fanline(project, capsys, "suggestions", "list", "--status", "all")
    assert [line.split()[1] for line in out.splitlines()] == ["accepted", "rejected", "new"]

    # the threshold: 773 + 1 held-out examples (the accepted one is training data now) and the
    # one hand-over still counted (the rejected one is not)
    code, out = fanline(project, capsys, "train")
    assert code == 0, out
    assert "held-out examples + 1 labelled fan text (calibrated" in out, out
    assert "unchanged, reusing" in fanline(project, capsys, "train")[1]

    code, out = fanline(project, capsys, "teach", "--example", "where do i park",
                        "--example", "parking?? call 303 555 0199", "--intent", "ask_parking",
                        "--response", "Lots open at 4pm.", "--as", "nobody")  # fmt: skip
    assert code == 2 and "no active agent 'nobody'" in out
    code, out = fanline(project, capsys, "teach", "--example", "where do i park",
                        "--example", "parking?? call 303 555 0199", "--intent", "ask_parking",
                        "--response", "Lots open at 4pm.", "--no-train")  # fmt: skip
    assert code == 0, out
    assert "  - parking?? call <phone>" in out and DOMAIN_FILE in out
    code, out = fanline(project, capsys, "teach", "--topic", "999", "--intent", "ask_other",
                        "--response", "x", "--no-train")  # fmt: skip
    assert code == 2 and "no topic 999" in out


def test_train_without_a_database_is_as_before(
    trained_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FANLINE_DATABASE_URL", f"sqlite:///{trained_project / 'none' / 'x.db'}")
    monkeypatch.setenv("FANLINE_NLU_PIPELINE", PIPELINE)
    code, out = fanline(trained_project, capsys, "train")
    assert code == 0 and "unchanged, reusing" in out
    assert "held-out examples (calibrated on held-out examples)" in out
    assert not (trained_project / "none").exists()  # no database file made to look for labels


class GatedTeacher(Teacher):
    """A teacher whose training waits for the test: overlapping requests are observable."""

    def __init__(self, project_dir: Path, db: Any) -> None:
        super().__init__(project_dir, db=db)
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.runs = 0
        self.running = 0
        self.overlapped = False

    async def _train(self, traffic: Any, stop: Any) -> tuple[Path, float]:
        self.running += 1
        self.overlapped |= self.running > 1
        self.runs += 1
        self.started.release()
        try:
            assert await asyncio.to_thread(self.release.wait, 10)
            return self.project_dir / f"nlu-run{self.runs}", 0.5
        finally:
            self.running -= 1


async def test_retrain_requests_are_trained_one_at_a_time_and_folded_into_one_more_run(
    tmp_path: Path, database_url: str
) -> None:
    """A teach records a request in the database; the process holding the `retrain` lease
    trains it. Requests that come while a training runs are one more training, not three."""
    from bot.leases import Singleton
    from bot.storage import Database, Store
    from bot.teach import requests

    Store.open(database_url, hash_key=b"k").close()
    db = Database(database_url)
    teacher = GatedTeacher(tmp_path, db)
    stop = asyncio.Event()
    lease = Singleton(db, "retrain", teacher.run, holder=teacher.holder)  # as a worker runs it
    job = asyncio.create_task(lease.run(stop))
    try:
        first = await teacher.request(7)
        assert await asyncio.to_thread(teacher.started.acquire, True, 10)
        assert (await db.run(requests.get, first))["status"] == "training"
        later = [await teacher.request() for _ in range(3)]  # three while one trains
        assert {(await db.run(requests.get, i))["status"] for i in later} == {"pending"}
        teacher.release.set()
        state = await teacher.wait(later[-1])  # the job (its lease) trains it: this waits
        assert teacher.runs == 2 and not teacher.overlapped
        assert state == {**state, "training": False, "last_model": "nlu-run2", "last_error": None}
        assert (await db.run(requests.get, first))["model"] == "nlu-run1"
        assert {(await db.run(requests.get, i))["model"] for i in later} == {"nlu-run2"}
        again = await teacher.request()
        assert (await teacher.wait(again))["last_model"] == "nlu-run3"
    finally:
        stop.set()
        await job
        db.close()
