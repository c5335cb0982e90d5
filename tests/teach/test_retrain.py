"""A teach's retraining (`bot.teach.retrain`, the child process) leaves the same model directory
as `fanline train`: the NLU model and, beside it, the line's compliance phrase model."""

from __future__ import annotations

from pathlib import Path

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
