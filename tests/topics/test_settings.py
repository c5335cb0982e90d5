"""`fanline.topics:` in config.yml: defaults, values, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import TopicSettings, load_settings
from bot.topics.vectors import NgramVectors

from .conftest import sweep_for

ENV = {"FANLINE_SECRET_KEY": "k"}


def test_topics_settings_default_and_validate(tmp_path: Path) -> None:
    assert load_settings(tmp_path, ENV).topics == TopicSettings()
    (tmp_path / "config.yml").write_text(
        "fanline:\n  topics:\n    join_similarity: 0.6\n    every_s: 2\n"
    )
    assert load_settings(tmp_path, ENV).topics == TopicSettings(join_similarity=0.6, every_s=2.0)
    (tmp_path / "config.yml").write_text(
        "fanline:\n  topics:\n    join_similarity: 0.6\n    group_distance: far\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, ENV)
    assert "config.yml:4" in str(err.value) and "fanline.topics.group_distance" in str(err.value)
    (tmp_path / "config.yml").write_text("fanline:\n  topics:\n    join: 0.6\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(tmp_path, ENV)
    (tmp_path / "config.yml").write_text("fanline:\n  topics:\n    join_similarity: 1.5\n")
    with pytest.raises(ConfigError, match="at most 1"):
        load_settings(tmp_path, ENV)
    (tmp_path / "config.yml").write_text("fanline:\n  topics: 5\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(tmp_path, ENV)


def test_unset_thresholds_are_the_vector_kinds_own(store: object) -> None:
    ngram = NgramVectors()
    assert sweep_for(store).thresholds(ngram) == (ngram.join_similarity, ngram.group_distance)  # type: ignore[arg-type]
    custom = sweep_for(store, settings=TopicSettings(join_similarity=0.9))  # type: ignore[arg-type]
    assert custom.thresholds(ngram) == (0.9, ngram.group_distance)
