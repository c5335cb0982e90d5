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
    out = capsys.readouterr().out
    assert "trained model" in out
    # what the evidence asks for beyond the threshold, and the small talk the line got
    assert "evidence: " in out and "uncovered words +" in out and "smalltalk_insult" in out
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
    # 86 examples in 3 folds: a held-out question often has a word none of the fold's other
    # examples speaks of, and such questions are handed over (`unknown_words`)
    assert 0.4 < report["in_scope_accuracy"] <= 1 and 0.5 < report["accuracy"] <= 1
    for picture in ("nlu_confusion.png", "nlu_confidence.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_command_held_out_split(tmp_path, capsys):
    assert run_test_command(PROJECT, PROJECT / "config.yml", tmp_path, split=0.25) == 0
    assert "held-out split" in capsys.readouterr().out
    assert run_test_command(PROJECT, PROJECT / "config.yml", tmp_path, split=1.5) == 2


def test_fanline_nlu_pipeline_picks_the_model_trained_and_loaded(tmp_path, capsys, monkeypatch):
    """FANLINE_NLU_PIPELINE=default `fanline train` once reused config.yml's model."""
    from bot.cli import main
    from bot.content import load_content
    from bot.runtime import ensure_model
    from bot.settings import load_settings

    project = tmp_path / "p"
    shutil.copytree(PROJECT, project)
    (project / "flows").mkdir()
    write(project / "flows", "f.yml", "flows:\n  hi:\n    keywords: [HI]\n    steps:\n"
          "      - action: utter_hi\n")  # fmt: skip
    write(project, "domain.yml", "responses:\n  utter_hi:\n    - text: hi\n")
    # config.yml's own pipeline: word n-grams only, unlike the shipped default
    write(project, "config.yml", "pipeline:\n  - name: CountVectorsFeaturizer\n"
          "  - name: LinearIntentClassifier\n  - name: FallbackClassifier\n")  # fmt: skip

    def train() -> str:
        assert main(["--project", str(project), "train"]) == 0
        return capsys.readouterr().out

    assert "trained model" in train()
    monkeypatch.setenv("FANLINE_NLU_PIPELINE", "default")
    with_default = train()
    assert "trained model" in with_default and "pipeline: default" in with_default
    assert len(list((project / "models").glob("nlu-*"))) == 2
    # the server (no training) loads the model of the pipeline it was told to use
    settings = load_settings(project, env={"FANLINE_NLU_PIPELINE": "default"})
    interp = ensure_model(settings, load_content(project), train=False)
    assert [f.options["analyzer"] for f in interp.model.featurizers] == ["word", "char_wb"]
    assert "unchanged, reusing" in train()
