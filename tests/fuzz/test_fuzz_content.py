"""The content loader under arbitrary edits: any bytes or any YAML shape in a flow, domain, NLU or
config file gives ConfigErrors that name the file (and a line where there is one), never a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.content import load_content
from bot.errors import ConfigError, ValidationFailed
from bot.nlu.config import load_nlu_config
from tests.conftest import ROOT

FILES = ["flows/faq.yml", "domain.yml", "data/nlu.yml"]
SCALAR = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
          | st.sampled_from(["utter_x", "intent", "steps", "collect", "{first_name}", "link"]))  # fmt: skip
KEY = st.sampled_from(["flows", "steps", "responses", "slots", "nlu", "intent", "examples",
                       "text", "collect", "link", "next", "if", "action", "type"]) | st.text(max_size=8)  # fmt: skip
SHAPE = st.recursive(SCALAR, lambda kids: st.lists(kids, max_size=4)
                     | st.dictionaries(KEY, kids, max_size=4), max_leaves=20)  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("line")
    for name in ("flows", "data", "domain.yml", "config.yml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, target / name)
    return target


def load_or_explain(project: Path, edited: Path) -> None:
    try:
        load_content(project)
    except ValidationFailed as exc:
        # an edit can be valid YAML that breaks another file's references: any file, named
        assert exc.problems and all(p.location and p.location.file for p in exc.problems), str(exc)
    except ConfigError as exc:
        assert exc.location is not None and exc.location.file == str(edited), str(exc)


@given(
    name=st.sampled_from(FILES), at=st.integers(0, 4000), junk=st.binary(min_size=1, max_size=40)
)
def test_any_bytes_spliced_into_a_content_file(
    project: Path, name: str, at: int, junk: bytes
) -> None:
    path = project / name
    original = (ROOT / name).read_bytes()
    path.write_bytes(original[:at] + junk + original[at:])
    try:
        load_or_explain(project, path)
    finally:
        path.write_bytes(original)


@given(name=st.sampled_from(FILES), shape=SHAPE)
def test_any_yaml_shape_in_a_content_file(project: Path, name: str, shape: object) -> None:
    path = project / name
    original = (ROOT / name).read_bytes()
    path.write_text(yaml.safe_dump(shape, allow_unicode=True), encoding="utf-8")
    try:
        load_or_explain(project, path)
    finally:
        path.write_bytes(original)


@given(shape=SHAPE | st.dictionaries(st.sampled_from(["pipeline", "language", "fanline", "policies"]),
                                     SHAPE, max_size=3))  # fmt: skip
def test_any_config_yml(project: Path, shape: object) -> None:
    path = project / "config.yml"
    original = (ROOT / "config.yml").read_bytes()
    path.write_text(yaml.safe_dump(shape, allow_unicode=True), encoding="utf-8")
    try:
        load_nlu_config(path)
    except ValidationFailed as exc:
        assert exc.problems and all(p.location and p.location.file == str(path)
                                    for p in exc.problems), str(exc)  # fmt: skip
    except ConfigError as exc:
        assert exc.location is not None and exc.location.file == str(path), str(exc)
    finally:
        path.write_bytes(original)
