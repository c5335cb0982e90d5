"""Rasa's config.yml, read in good faith: every standard component mapped or explained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.nlu import load_nlu_config, load_training_data, train
from bot.nlu.cli import train_command
from bot.nlu.config import read_nlu_config
from bot.rasa import components as rasa_components
from tests.conftest import ROOT

NLU_PROJECT = ROOT / "tests" / "nlu" / "fixtures" / "project"

# Rasa 3.6's default pipeline (as `rasa init` writes it, uncommented) plus the options and
# components a real project uses: eight runs of `fanline train` used to find these one by one.
RASA_CONFIG = """\
recipe: default.v1
assistant_id: placeholder_default
language: en
pipeline:
  - name: WhitespaceTokenizer
    token_pattern: (?u)\\b\\w+\\b
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
    OOV_token: oov
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
    constrain_similarities: true
  - name: EntitySynonymMapper
  - name: ResponseSelector
    epochs: 100
  - name: DucklingEntityExtractor
    url: http://localhost:8000
    dimensions: [time, number]
  - name: FallbackClassifier
    threshold: 0.7
    ambiguity_threshold: 0.1
policies:
  - name: MemoizationPolicy
  - name: TEDPolicy
    max_history: 5
    epochs: 100
  - name: RulePolicy
"""

STANDARD = [
    "WhitespaceTokenizer", "SpacyTokenizer", "JiebaTokenizer", "MitieTokenizer", "RegexFeaturizer",
    "LexicalSyntacticFeaturizer", "CountVectorsFeaturizer", "LanguageModelFeaturizer",
    "SpacyFeaturizer", "ConveRTFeaturizer", "MitieFeaturizer", "DIETClassifier",
    "SklearnIntentClassifier", "KeywordIntentClassifier", "LogisticRegressionClassifier",
    "MitieIntentClassifier", "FallbackClassifier", "EntitySynonymMapper", "RegexEntityExtractor",
    "CRFEntityExtractor", "DucklingEntityExtractor", "SpacyEntityExtractor",
    "MitieEntityExtractor", "ResponseSelector", "SpacyNLP", "MitieNLP", "LanguageModelTokenizer",
    # Rasa 2's own, which older projects still name
    "ConveRTTokenizer", "HFTransformersNLP", "EmbeddingIntentClassifier",
]  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rasa_config_loads_with_notes_instead_of_errors(tmp_path: Path) -> None:
    cfg = load_nlu_config(_write(tmp_path, RASA_CONFIG))
    names = [c.name for c in cfg.pipeline]
    assert names.count("LinearIntentClassifier") == 1 and "TokenEntityExtractor" in names
    assert cfg.component("CountVectorsFeaturizer").options["analyzer"] == "word"
    assert [c.options["max_ngram"] for c in cfg.pipeline if c.name == "CountVectorsFeaturizer"] == [
        1,
        4,
    ]
    assert cfg.component("FallbackClassifier").options["threshold"] == 0.7
    notes = "\n".join(str(n) for n in cfg.notes)
    for words in ("token_pattern", "OOV_token", "epochs", "constrain_similarities",
                  "ambiguity_threshold", "DucklingEntityExtractor: not supported", "slot type",
                  "ResponseSelector", "policy TEDPolicy", "policy RulePolicy", "placeholder",
                  "fixed threshold"):  # fmt: skip
        assert words in notes, words
    assert all(n.warning and n.location for n in cfg.notes)
    duckling = next(n for n in cfg.notes if "DucklingEntityExtractor" in n.message)
    assert duckling.location.line == 21


@pytest.mark.parametrize("name", STANDARD)
def test_every_standard_rasa_component_is_mapped_or_explained(tmp_path: Path, name: str) -> None:
    text = (
        "pipeline:\n- name: CountVectorsFeaturizer\n- name: LinearIntentClassifier\n"
        f"- name: {name}\n"
    )
    cfg, problems = read_nlu_config(_write(tmp_path, text))
    assert cfg is not None, [str(p) for p in problems]
    known = name in rasa_components.COMPONENTS or name in {c.name for c in cfg.pipeline}
    assert known
    if name in rasa_components.COMPONENTS:
        note = next(p for p in problems if p.message.startswith(name))
        assert note.warning and note.location.line == 4
        if not rasa_components.COMPONENTS[name].supported:
            assert "not supported" in note.message and ":" in note.message  # what to use instead


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = (
        "recipe: graph.v1\npipelin: default\npipeline:\n- name: CountVectorsFeaturizer\n"
        "  min_ngram: two\n- name: LinearIntentClassifier\n  epochs: 3\n"
        "- name: FallbackClassifier\n  threshold: 7\n- name: NoSuchThing\n"
    )
    _, problems = read_nlu_config(_write(tmp_path, text))
    errors = {(p.location.line, p.location.key) for p in problems if not p.warning}
    assert errors == {
        (1, "recipe"),
        (2, "pipelin"),
        (5, "min_ngram"),
        (7, "epochs"),
        (9, "threshold"),
        (10, "name"),
    }


def test_validate_checks_the_pipeline_and_lists_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "line"
    assert main(["init", str(project)]) == 0
    (project / "config.yml").write_text(
        "pipeline:\n- name: CountVectorsFeaturizer\n  analyzer: chars\n"
        "- name: DIETClassifier\n  epochs: 100\n- name: FallbackClassifier\n  threshold: high\n"
    )
    capsys.readouterr()
    assert main(["--project", str(project), "validate"]) == 2
    err = capsys.readouterr().err
    assert "config.yml:3 [analyzer]" in err and "config.yml:7 [threshold]" in err
    assert "warning: " in err and "epochs" in err and "Traceback" not in err


def test_train_says_a_rasa_threshold_is_fixed_and_auto_is_calibrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(NLU_PROJECT / "data", tmp_path / "data")
    fixed = _write(tmp_path, RASA_CONFIG)
    assert train_command(tmp_path, fixed, tmp_path / "models") == 0
    out, err = capsys.readouterr()
    assert "threshold 0.700 (fixed in" in out and "note: " in err and "DIETClassifier" in err
    auto = _write(tmp_path, RASA_CONFIG.replace("threshold: 0.7", "threshold: auto"))
    assert train_command(tmp_path, auto, tmp_path / "models") == 0
    assert "calibrated on held-out examples" in capsys.readouterr().out


def test_the_mapped_pipeline_trains_and_keeps_the_fixed_threshold(tmp_path: Path) -> None:
    from bot.nlu import load_interpreter

    cfg = load_nlu_config(_write(tmp_path, RASA_CONFIG))
    data = load_training_data([NLU_PROJECT / "data"])
    interp = load_interpreter(train(cfg, data, tmp_path / "models", progress=False))
    assert interp.threshold == pytest.approx(0.7)


# A Rasa 2.x config.yml as those projects wrote it: Rasa 2's tokenizers, model loader and
# policies were "unknown component" errors before they were mapped.
RASA2_CONFIG = """\
language: en
pipeline:
  - name: HFTransformersNLP
    model_name: bert
  - name: ConveRTTokenizer
  - name: ConveRTFeaturizer
  - name: LanguageModelTokenizer
  - name: LanguageModelFeaturizer
  - name: CountVectorsFeaturizer
  - name: EmbeddingIntentClassifier
  - name: EntitySynonymMapper
policies:
  - name: MemoizationPolicy
  - name: FormPolicy
  - name: MappingPolicy
  - name: FallbackPolicy
  - name: TwoStageFallbackPolicy
"""


def test_a_rasa_2_config_loads_with_notes_instead_of_errors(tmp_path: Path) -> None:
    cfg, problems = read_nlu_config(_write(tmp_path, RASA2_CONFIG))
    assert cfg is not None and all(p.warning for p in problems), [str(p) for p in problems]
    names = [c.name for c in cfg.pipeline]
    assert names.count("SentenceEmbeddingFeaturizer") == 1, names
    assert "LinearIntentClassifier" in names
    notes = {p.location.line: p.message for p in problems}
    assert notes[5].startswith("ConveRTTokenizer: read") and "model_name" in notes[3]
    assert "forms become flows" in notes[14] and "pattern_cannot_handle" in notes[17]
