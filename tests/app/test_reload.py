"""Hot reload: edited content goes live between turns; invalid content is refused, not served."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from bot.messages import InboundSms
from bot.reloader import Reloader
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.conftest import ROOT


def copy_project(tmp_path: Path) -> Path:
    target = tmp_path / "line"
    for name in ("flows", "data", "actions", "models", "domain.yml", "config.yml"):
        src = ROOT / name
        if src.exists():  # models/ is there once `fanline train` ran; else Runtime trains
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, target / name)
    return target


def sms(number: str, body: str) -> InboundSms:
    return InboundSms(f"SM{uuid.uuid4().hex}", number, "+15550100000", body)


async def test_an_edited_response_is_live_without_a_restart(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    settings = load_settings(
        project, env={"FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    )
    runtime = await Runtime.start(settings)
    reloader = Reloader(runtime)
    try:
        await runtime.handle(sms("+15555550111", "hi"))
        await runtime.handle(sms("+15555550111", "yes"))
        domain = project / "domain.yml"
        assert await reloader.check() is False  # nothing changed yet
        domain.write_text(domain.read_text() + "  utter_merch_extra:\n    - text: unused\n")
        flows = project / "flows" / "keywords.yml"
        flows.write_text(flows.read_text().replace("utter_tour_dates", "utter_merch_extra", 1))
        assert await reloader.check() is True
        out = await runtime.handle(sms("+15555550111", "TOUR"))
        assert [q.reply.body for q in out.replies] == ["unused"]

        domain.write_text("responses: [broken\n")  # a bad save: keep serving the last good one
        assert await reloader.check() is False
        out = await runtime.handle(sms("+15555550111", "TOUR"))
        assert [q.reply.body for q in out.replies] == ["unused"]

        good = flows.read_bytes()
        flows.write_bytes(good.replace(b"TOUR", b"TOUR \xff\xfe", 1))  # saved as Latin-1, say
        assert await reloader.check() is False  # refused with file:line, and the reloader lives
        flows.write_bytes(good)
        domain.write_text(domain.read_text().replace("responses: [broken\n", ""))
        shutil.copy2(ROOT / "domain.yml", domain)
        domain.write_text(domain.read_text() + "  utter_merch_extra:\n    - text: back again\n")
        assert await reloader.check() is True  # a later valid edit still goes live
        out = await runtime.handle(sms("+15555550111", "TOUR"))
        assert [q.reply.body for q in out.replies] == ["back again"]
    finally:
        await runtime.close()


async def test_changed_training_data_goes_live_once_trained(tmp_path: Path) -> None:
    from bot.content import load_content
    from bot.runtime import ensure_model

    project = copy_project(tmp_path)
    settings = load_settings(
        project, env={"FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    )
    runtime = await Runtime.start(settings)
    reloader = Reloader(runtime)
    try:
        before = runtime.pipeline.brain.interpreter.fingerprint
        nlu = project / "data" / "more.yml"
        nlu.write_text(
            'version: "3.1"\nnlu:\n  - intent: greet\n    examples: |\n      - howdy partner\n'
        )
        assert await reloader.check() is False  # not trained yet: keep serving the old model
        assert runtime.pipeline.brain.interpreter.fingerprint == before
        ensure_model(settings, load_content(project), train=True)  # what `fanline train` does
        assert await reloader.check() is True
        assert runtime.pipeline.brain.interpreter.fingerprint != before
    finally:
        await runtime.close()


def test_a_model_still_being_written_is_no_change(tmp_path: Path) -> None:
    # teach and train write a model into a hidden `.tmp-*` folder and publish it with one
    # rename: until then the reloader must not see a change (it reloaded the content each time)
    from bot.reloader import stamp

    models = tmp_path / "models"
    (models / "nlu-abc").mkdir(parents=True)
    (models / "nlu-abc" / "model.json").write_text("{}")
    before = stamp(tmp_path, models)
    (models / ".tmp-nlu-def").mkdir()
    (models / ".tmp-nlu-def" / "model.json").write_text("{}")
    assert stamp(tmp_path, models) == before
    (models / ".tmp-nlu-def").rename(models / "nlu-def")  # published
    assert stamp(tmp_path, models) != before
