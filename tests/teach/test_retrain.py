"""A teach's retraining (`bot.teach.retrain`, the child process) leaves the same model directory
as `fanline train`: the NLU model and, beside it, the line's compliance phrase model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compliance import line
from bot.nlu.data import load_training_data
from bot.teach.retrain import train_here
from tests.teach.conftest import PIPELINE


def test_retraining_saves_the_lines_compliance_model_beside_the_nlu_model(
    project: Path, tmp_path: Path
) -> None:
    target, _ = train_here(project, tmp_path / "models", PIPELINE, None)
    data = load_training_data([project / "data"])
    # what the reloader looks for: without it the server trains the phrase model at reload
    saved = line.load(target, line.fingerprint(line.negatives(data)))
    assert saved is not None
    assert saved.probabilities("please stop texting me")["opt_out"] > 0.5


def _published_alone(models: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each time the phrase model starts training, what a reloader polling then would find:
    published model folders (not the hidden temporary ones) with an NLU model and no phrase
    model. A list filled as training goes."""
    seen: list[list[str]] = []
    real_train = line.train

    def watched_train(data: object) -> object:
        seen.append(sorted(
            d.name for d in models.iterdir()
            if not d.name.startswith(".") and (d / "metadata.json").is_file()
            and not (d / line.META).is_file()
        ))  # fmt: skip
        return real_train(data)

    monkeypatch.setattr(line, "train", watched_train)
    return seen


def test_the_nlu_model_is_never_published_without_its_compliance_model(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reloader polls the model directory: it must never see the NLU model alone (it loaded
    it and trained the phrase model in the fans' process, seconds after every teach)."""
    models = tmp_path / "models"
    seen = _published_alone(models, monkeypatch)
    target, _ = train_here(project, models, PIPELINE, None)
    assert seen == [[]]
    assert (target / line.META).is_file()


def test_fanline_train_never_publishes_the_nlu_model_without_its_compliance_model(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fanline train` beside a running server: the same gap as a teach's retraining."""
    from bot.cli import main

    seen = _published_alone(project / "models", monkeypatch)
    monkeypatch.setenv("FANLINE_NLU_PIPELINE", PIPELINE)
    assert main(["-q", "--project", str(project), "train"]) == 0
    assert seen == [[]]
