"""bot.nlu.config: the NLU keys of config.yml, shipped pipelines and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.nlu import load_nlu_config
from bot.nlu.config import COMPONENTS, read_nlu_config, shipped_config

from .conftest import write

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["default", "accurate"])
def test_shipped_configs_load_with_known_components(name):
    cfg = shipped_config(name)
    assert cfg.component("LinearIntentClassifier") is not None
    assert all(c.name in COMPONENTS for c in cfg.pipeline)
    assert (cfg.component("SentenceEmbeddingFeaturizer") is not None) == (name == "accurate")


def test_project_config_ignores_engine_keys_and_names_the_pipeline(tmp_path):
    path = write(
        tmp_path,
        "config.yml",
        "recipe: default.v1\nlanguage: en\nassistant_id: x\npipeline: accurate\n"
        "policies: []\nfanline:\n  threshold: 0.4\n",
    )
    cfg = load_nlu_config(path)
    assert cfg.assistant_id == "x"
    assert cfg.pipeline == shipped_config("accurate").pipeline
    assert cfg.fingerprint != shipped_config("default").fingerprint


def test_repository_config_yml_loads():
    cfg = load_nlu_config(ROOT / "config.yml")
    assert cfg.component("LinearIntentClassifier") is not None


def test_options_get_defaults_and_overrides(tmp_path):
    path = write(
        tmp_path,
        "config.yml",
        "pipeline:\n- name: CountVectorsFeaturizer\n  analyzer: char_wb\n"
        "- name: LinearIntentClassifier\n  C: 2\n- name: FallbackClassifier\n  threshold: 0.3\n",
    )
    cfg = load_nlu_config(path)
    assert cfg.component("CountVectorsFeaturizer").options["max_ngram"] == 1
    assert cfg.component("LinearIntentClassifier").options["C"] == 2
    assert cfg.component("FallbackClassifier").options["threshold"] == 0.3


BAD = {
    "custom rasa component": (
        "pipeline:\n- name: WhitespaceTokenizer\n- name: addons.MyClassifier\n",
        3,
        "name",
        "custom Rasa component",
    ),
    "unknown option": (
        "pipeline:\n- name: LinearIntentClassifier\n  epochs: 100\n",
        3,
        "epochs",
        "allowed: C",
    ),
    "wrong type": (
        "pipeline:\n- name: CountVectorsFeaturizer\n  min_ngram: two\n- name: LinearIntentClassifier\n",
        3,
        "min_ngram",
        "number",
    ),
    "bad choice": (
        "pipeline:\n- name: CountVectorsFeaturizer\n  analyzer: chars\n- name: LinearIntentClassifier\n",
        3,
        "analyzer",
        "one of",
    ),
    "bad threshold": (
        "pipeline:\n- name: LinearIntentClassifier\n- name: FallbackClassifier\n  threshold: 3\n",
        4,
        "threshold",
        "auto",
    ),
    "bad top k": (
        "pipeline:\n- name: LinearIntentClassifier\n- name: FallbackClassifier\n"
        "  neighbour_top_k: 0.5\n",
        4,
        "neighbour_top_k",
        "whole number",
    ),
    "no classifier": (
        "pipeline:\n- name: CountVectorsFeaturizer\n",
        2,
        "pipeline",
        "intent classifier",
    ),
    "unknown shipped": ("pipeline: fastest\n", 1, "pipeline", "shipped"),
    "unknown top key": ("pipline: default\n", 1, "pipline", "unknown top-level"),
    "no name": ("pipeline:\n- analyzer: word\n", 2, "name", "needs a 'name'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_config_errors_name_file_line_and_key(tmp_path, case):
    text, line, key, words = BAD[case]
    path = write(tmp_path, "config.yml", text)
    with pytest.raises(ConfigError):
        load_nlu_config(path)
    _, problems = read_nlu_config(path)
    found = [
        p
        for p in problems
        if not p.warning
        and (p.location.file, p.location.line, p.location.key) == (str(path), line, key)
    ]
    assert found and words in found[0].message, [str(p) for p in problems]
