"""Reads flow files and domain files into models, with file:line on every error.

Runs once at start-up (and in `fanline validate`), before any message is handled. The YAML
loader remembers the line of every mapping, key and list item, so pydantic errors, duplicate
keys and duplicate flow ids are reported as `ConfigError(message, Location(file, line, key))`.
Default patterns (`default_flows.yml`) and their texts (`default_domain.yml`) are merged first;
project content overrides them by id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError, Location, ValidationFailed
from bot.flows.model import Domain, Flow, FlowFile

HERE = Path(__file__).parent
DEFAULT_FLOWS = HERE / "default_flows.yml"
DEFAULT_DOMAIN = HERE / "default_domain.yml"


class MarkedDict(dict):
    """A YAML mapping that knows its line and the line of each key (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]


class MarkedList(list):
    line: int | None = None
    item_lines: list[int]


# LibYAML's parser where PyYAML was built with it (its wheels are): the same nodes and marks,
# about ten times faster than the pure-Python one; constructing and resolving stay in Python
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _MarkedLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that records marks and refuses duplicate keys."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:
        self.flatten_mapping(node)
        result = MarkedDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in result:
                raise ConfigError(f"duplicate key {key!r}", Location(self.file, line, str(key)))
            value = self.construct_object(value_node, deep=True)
            if isinstance(value, MarkedDict | MarkedList):
                value.line = line  # a nested mapping is "at" its key: `birthday_shoutout:`
            result[key] = value
            result.key_lines[key] = line
        return result

    def construct_marked_list(self, node: yaml.SequenceNode) -> MarkedList:
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


# YAML 1.2 booleans, as Rasa reads them: only true/false. Under YAML 1.1 `then: yes` or
# `keywords: [NO]` would silently become booleans.
_MarkedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MarkedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_MarkedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _MarkedLoader.construct_mapping
)
_MarkedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _MarkedLoader.construct_marked_list
)


def read_text(path: Path) -> str:
    """A content file's text; unreadable files and bytes that are not UTF-8 become ConfigError
    naming the file and the line of the first bad byte."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", Location(str(path))) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            Location(str(path), line),
        ) from None


def yaml_error(path: Path, exc: yaml.YAMLError, text: str) -> ConfigError:
    """A PyYAML error as ConfigError with file and line (syntax, and characters YAML refuses)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        return ConfigError(f"YAML syntax: {exc.problem or exc}", Location(str(path), line))
    if isinstance(exc, yaml.reader.ReaderError):  # e.g. a NUL byte or another control character
        character, position = exc.character, exc.position
        if isinstance(character, int):  # LibYAML's: the code point, at a UTF-8 byte offset
            character = chr(character)
            position = len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))
        line = text[:position].count("\n") + 1
        return ConfigError(
            f"character {character!r} is not allowed in YAML", Location(str(path), line)
        )
    return ConfigError(f"YAML: {exc}", Location(str(path)))


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; syntax errors become ConfigError with the file and line."""
    file = str(path)
    text = read_text(path)
    try:
        loader = _MarkedLoader(text, file)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, text) from None
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, text) from None
    finally:
        loader.dispose()


def load_flows(paths: Iterable[Path], *, defaults: bool = True) -> dict[str, Flow]:
    """All flows of the given files (plus the default patterns), keyed by id.

    Raises ValidationFailed listing every problem found (all files are read before raising).
    """
    problems: list[ConfigError] = []
    flows: dict[str, Flow] = {}
    if defaults:
        flows.update(_parse(DEFAULT_FLOWS, FlowFile, problems).flows)  # type: ignore[union-attr]
    seen: dict[str, Location] = {}
    for path in paths:
        parsed = _parse(Path(path), FlowFile, problems)
        if parsed is None:
            continue
        for flow_id, flow in parsed.flows.items():  # type: ignore[attr-defined]
            here = flow.where(path=f"flows.{flow_id}")
            if flow_id in seen:
                problems.append(
                    ConfigError(f"flow {flow_id!r} is also defined at {seen[flow_id]}", here)
                )
                continue
            seen[flow_id] = here
            flows[flow_id] = flow  # a project flow replaces a default pattern of the same id
    if problems:
        raise ValidationFailed(problems)
    return flows


def load_domain(
    paths: Iterable[Path], *, defaults: bool = True, response_files: Iterable[Path] = ()
) -> Domain:
    """The merged domain: slots and responses of every file (later files may not redefine).

    `response_files` are training data files: only their `responses:` are read (Rasa lets
    responses live in `data/**/responses.yml` as well as in the domain).
    """
    problems: list[ConfigError] = []
    slots: dict[str, Any] = {}
    responses: dict[str, Any] = {}
    forms: dict[str, Any] = {}
    intents: list[Any] = []  # declared intents: those without examples are sent by buttons
    if defaults:
        base = _parse(DEFAULT_DOMAIN, Domain, problems)
        if isinstance(base, Domain):
            responses.update(base.responses)
            slots.update(base.slots)  # the patterns' own slots (reserved names)
    project_responses: dict[str, Location] = {}
    parsed = [(p, _parse(Path(p), Domain, problems)) for p in paths]
    parsed += [(p, _parse(Path(p), Domain, problems, only="responses")) for p in response_files]
    for path, domain in parsed:
        if not isinstance(domain, Domain):
            continue
        for name, form in (domain.forms or {}).items():
            if isinstance(form, MarkedDict):
                form.file = str(path)  # type: ignore[attr-defined]  # for warnings about it
            forms[name] = form
        intents += domain.intents or []
        for kind, items, target, seen in (
            ("slot", domain.slots, slots, None),
            ("response", domain.responses, responses, project_responses),
        ):
            for name, value in items.items():
                _merge(kind, name, value, target, seen, domain, problems)
    if problems:
        raise ValidationFailed(problems)
    return Domain.model_construct(
        slots=slots, responses=responses, forms=forms or None, intents=intents or None
    )


def _merge(
    kind: str,
    name: str,
    value: Any,
    target: dict[str, Any],
    seen: dict[str, Location] | None,
    domain: Domain,
    problems: list[ConfigError],
) -> None:
    # Slots and project responses may be defined once; project responses replace default ones.
    first = value[0] if isinstance(value, list) and value else value
    here = first.where() if hasattr(first, "where") else domain.where()
    already = (name in target) if seen is None else (name in seen)
    if already:
        where = seen[name] if seen else "another file"
        problems.append(ConfigError(f"{kind} {name!r} is also defined at {where}", here))
        return
    if seen is not None:
        seen[name] = here
    target[name] = value


def _parse(
    path: Path, model: type[BaseModel], problems: list[ConfigError], only: str | None = None
) -> BaseModel | None:
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        problems.append(exc)
        return None
    if data is None:
        data = MarkedDict()
    if only is not None:  # one key of a file that holds other things too (`responses:` in data/)
        if not isinstance(data, MarkedDict) or only not in data:
            return None
        part = MarkedDict({only: data[only]})
        part.line, part.key_lines = data.line, {only: data.key_lines[only]}
        data = part
    try:
        return model.model_validate(data, context={"file": str(path)})
    except ValidationError as exc:
        problems.extend(_config_errors(exc, data, str(path)))
        return None


def _config_errors(exc: ValidationError, data: Any, file: str) -> list[ConfigError]:
    errors: dict[str, ConfigError] = {}
    for error in exc.errors(include_url=False):
        line, key = locate(data, error["loc"])
        problem = ConfigError(_message(error), Location(file, line, key))
        errors.setdefault(str(problem), problem)  # union members repeat the same complaint
    return list(errors.values())


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def locate(data: Any, loc: tuple[Any, ...]) -> tuple[int | None, str | None]:
    """Line and dotted key of a pydantic error location inside marked YAML data."""
    line = getattr(data, "line", None)
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, MarkedDict) and part in node:
            line = node.key_lines.get(part, line)
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, MarkedList) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            node = node[part]
    return line, ".".join(parts) or None
