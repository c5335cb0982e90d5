"""YAML with line numbers for NLU content: training data and `config.yml` errors say file:line.

Content time only. Reads the composed node tree (not plain dicts) so each value keeps where it
came from; `value()` turns a node into plain Python when its position no longer matters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, Location

# LibYAML's parser when PyYAML has it: the same nodes and line marks, several times faster
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(path: Path) -> yaml.Node | None:
    """Parse a YAML file into its node tree; syntax errors become ConfigError with the line."""
    from bot.flows.loader import read_text, yaml_error

    text = read_text(path)
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, text) from None


def where(path: Path, node: yaml.Node, key: str | None = None) -> Location:
    return Location(str(path), node.start_mark.line + 1, key)


def items(node: yaml.MappingNode) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """(key, key node, value node) for each entry of a mapping."""
    return [(str(k.value), k, v) for k, v in node.value]


def value(node: yaml.Node) -> Any:
    """Plain Python for a node, with YAML's usual types (ints, bools, lists, dicts)."""
    return yaml.SafeLoader(_EMPTY).construct_object(node, deep=True)


def expect_mapping(path: Path, node: yaml.Node | None, what: str, key: str | None = None):
    if not isinstance(node, yaml.MappingNode):
        loc = where(path, node, key) if node is not None else Location(str(path), None, key)
        raise ConfigError(f"{what} must be a mapping", loc)
    return node


def expect_sequence(path: Path, node: yaml.Node, what: str, key: str | None = None):
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{what} must be a list", where(path, node, key))
    return node


def expect_str(path: Path, node: yaml.Node, what: str, key: str | None = None) -> str:
    if not isinstance(node, yaml.ScalarNode) or not isinstance(value(node), str | int | float):
        raise ConfigError(f"{what} must be a string", where(path, node, key))
    text = str(node.value)
    if not text.strip():
        raise ConfigError(f"{what} must not be empty", where(path, node, key))
    return text


_EMPTY = ""
