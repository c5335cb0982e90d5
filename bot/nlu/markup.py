"""Rasa's entity markup inside training examples: `[text](entity)` and `[text]{"entity": ...}`.

Content time only (loading `data/*.yml`): turns an annotated example into its plain text and
the `Entity` spans the trainable extractor learns from. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re

from bot.messages import Entity

# Rasa's own grammar: [text](entity) or [text](entity:value) or [text]{"entity": ...}
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\})"
)
_DICT_KEYS = {"entity", "value", "role", "group"}


class MarkupError(ValueError):
    """An annotation that cannot be read; the loader adds file and line."""


def parse_markup(example: str) -> tuple[str, tuple[Entity, ...]]:
    """Return (plain text, entities with character offsets into the plain text)."""
    plain: list[str] = []
    entities: list[Entity] = []
    cursor = 0
    length = 0
    for match in _ANNOTATION.finditer(example):
        before = example[cursor : match.start()]
        plain.append(before)
        length += len(before)
        text = match.group("text")
        entities.append(_entity(match, text, length))
        plain.append(text)
        length += len(text)
        cursor = match.end()
    plain.append(example[cursor:])
    return "".join(plain), tuple(entities)


def _entity(match: re.Match[str], text: str, start: int) -> Entity:
    end = start + len(text)
    if match.group("dict") is not None:
        spec = _read_dict(match.group("dict"))
        value = spec.get("value", text)
        return Entity(
            entity=spec["entity"],
            value=value,
            start=start,
            end=end,
            role=spec.get("role"),
            group=spec.get("group"),
        )
    entity = match.group("entity").strip()
    value = match.group("value")
    if not entity:
        raise MarkupError(f"empty entity name in annotation {match.group(0)!r}")
    return Entity(entity=entity, value=value.strip() if value else text, start=start, end=end)


def _read_dict(raw: str) -> dict[str, str]:
    try:
        spec = json.loads("{" + raw + "}")
    except json.JSONDecodeError as exc:
        raise MarkupError(f"entity annotation {{{raw}}} is not valid JSON: {exc.msg}") from None
    if not isinstance(spec, dict) or "entity" not in spec:
        raise MarkupError(f'entity annotation {{{raw}}} needs an "entity" key')
    unknown = set(spec) - _DICT_KEYS
    if unknown:
        raise MarkupError(
            f"entity annotation has unknown key(s) {sorted(unknown)}; allowed: {sorted(_DICT_KEYS)}"
        )
    if not all(isinstance(v, str) for v in spec.values()):
        raise MarkupError(f"entity annotation {{{raw}}}: values must be strings")
    return spec


def has_unclosed_markup(example: str) -> bool:
    """A `[` that never became an annotation usually means a typo in the markup."""
    stripped = _ANNOTATION.sub("", example)
    return bool(re.search(r"\[[^\]]*\]\s*[({]", stripped))
