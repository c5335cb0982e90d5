"""Content is parsed by LibYAML (several times faster: every start, reload and `fanline validate`
reads all of it) with the pure-Python loader's behaviour: lines, YAML 1.2 booleans, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.errors import ConfigError
from bot.flows import loader
from bot.nlu import yamlnodes


def test_libyaml_parses_content_where_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without LibYAML: the pure-Python parser is used")
    assert issubclass(loader._MarkedLoader, yaml.CSafeLoader)
    assert yamlnodes._LOADER is yaml.CSafeLoader


def test_a_character_yaml_refuses_is_reported_at_its_line_after_non_ascii_text(
    tmp_path: Path,
) -> None:
    # LibYAML reports a UTF-8 byte offset: counted as characters it named a later line
    path = tmp_path / "domain.yml"
    path.write_text('a: "ééééééééééééééé"\nb: "ü"\nc: bell\x07\nd: 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        loader.read_yaml(path)
    assert str(caught.value) == f"{path}:3: character '\\x07' is not allowed in YAML"


def test_marks_booleans_and_duplicate_keys_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "flows.yml"
    path.write_text("flows:\n  a:\n    then: yes\n    on: true\n    steps: [x, y]\n")
    data = loader.read_yaml(path)
    flow = data["flows"]["a"]
    assert (flow["then"], flow["on"]) == ("yes", True)  # YAML 1.2: `yes` is a string
    assert (data.line, flow.line, flow.key_lines["steps"], flow["steps"].item_lines) == (
        1, 2, 5, [5, 5])  # fmt: skip
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(ConfigError, match=r":3 \[a\]: duplicate key 'a'"):
        loader.read_yaml(path)
    path.write_text("a: x\n  b: [\n")
    with pytest.raises(ConfigError, match=r":2: YAML syntax: mapping values are not allowed"):
        loader.read_yaml(path)
