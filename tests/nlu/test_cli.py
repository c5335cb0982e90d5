"""bot.nlu.cli: `fanline train` and `fanline test nlu` reports and exit codes."""

from __future__ import annotations

import json
import shutil

from bot.nlu.cli import test_command as run_test_command
from bot.nlu.cli import train_command

from .conftest import PROJECT, write


def test_train_command_trains_then_reuses(tmp_path, capsys):
    models = tmp_path / "models"
    assert train_command(PROJECT, PROJECT / "config.yml", models) == 0
    assert "trained model" in capsys.readouterr().out
    assert train_command(PROJECT, PROJECT / "config.yml", models) == 0
    assert "unchanged, reusing" in capsys.readouterr().out
    assert len(list(models.glob("nlu-*"))) == 1


def test_train_command_reports_content_errors_with_location(tmp_path, capsys):
    project = tmp_path / "p"
    shutil.copytree(PROJECT, project)
    write(
        project / "data", "bad.yml", 'version: "3.1"\nnlu:\n- intent: x\n  examples: |\n    oops\n'
    )
    assert train_command(project, project / "config.yml", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "bad.yml:5" in err and "- " in err


def test_test_command_cross_validates_and_writes_pictures(tmp_path, capsys):
    out = tmp_path / "results"
    assert run_test_command(PROJECT, PROJECT / "config.yml", out, folds=3) == 0
    text = capsys.readouterr().out
    for words in (
        "3-fold cross-validation",
        "in-scope accuracy",
        "out-of-scope recall",
        "most confused",
    ):
        assert words in text
    report = json.loads((out / "nlu_report.json").read_text())
    assert report["examples"] == 86
    assert {s["intent"] for s in report["per_intent"]} >= {"greet", "faq/ask_vip", "out_of_scope"}
    assert 0.5 < report["in_scope_accuracy"] <= 1
    for picture in ("nlu_confusion.png", "nlu_confidence.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_command_held_out_split(tmp_path, capsys):
    assert run_test_command(PROJECT, PROJECT / "config.yml", tmp_path, split=0.25) == 0
    assert "held-out split" in capsys.readouterr().out
    assert run_test_command(PROJECT, PROJECT / "config.yml", tmp_path, split=1.5) == 2
