"""A line imported from a Rasa project unsubscribes nobody for asking its own questions (issue 15):
`fanline import rasa` of a small assistant (fixtures/assistant: "tell me about rasa", "please
tell me my todo list", "cancel my 3pm reminder"), then `train` and `validate` report the
intents that are themselves compliance requests, and every other training example, sent by a
subscribed fan through the real pipeline, reaches the NLU."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.nlu.data import load_training_data
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.pipeline.test_pipeline import fan, text

FIXTURE = Path(__file__).parent / "fixtures" / "assistant"
COMPLIANCE_INTENTS = {"unsubscribe_newsletter", "help"}


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    new = tmp_path / "assistant"
    assert main(["import", "rasa", str(FIXTURE), str(new)]) == 0
    capsys.readouterr()
    return new


def test_train_and_validate_report_the_lines_compliance_intents(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(imported), "train"]) == 0
    out = capsys.readouterr()
    assert "intent 'unsubscribe_newsletter' is itself a STOP request (by its name)" in out.err
    assert "intent 'help' is itself a HELP request (by its name)" in out.err
    assert "data/nlu.yml:" in out.err
    assert "compliance: 0 of 46 training examples would be taken" in out.out
    models = list((imported / "models").glob("nlu-*/compliance.json"))
    assert len(models) == 1  # trained beside the NLU model
    assert main(["--project", str(imported), "validate"]) == 0
    again = capsys.readouterr()
    assert "intent 'help' is itself a HELP request" in again.err
    assert "compliance: 0 of 46" in again.out


async def test_the_imported_line_unsubscribes_nobody_for_its_own_questions(
    imported: Path, database_url: str
) -> None:
    settings = load_settings(
        imported, env={"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    )
    runtime = await Runtime.start(settings)
    try:
        number = fan()
        await runtime.handle(text(number, "hey"))
        data = load_training_data([imported / "data"])
        taken = []
        for example in data.examples:
            if example.intent in COMPLIANCE_INTENTS:
                continue
            out = await runtime.handle(text(number, example.text))
            decided = [d["kind"] for t, d in out.events if t == "compliance"]
            if decided:
                taken.append((example.text, decided))
        assert taken == []
        contact = await runtime.store.contact_by_phone(number)
        assert contact is not None and contact.subscription != "unsubscribed"
    finally:
        await runtime.close()
