"""Renders a domain response into the text of an SMS, and counts the segments it will cost.

The engine calls `Responses.render()` for `action: utter_*`; the validator calls
`sms_segments()` to warn about long texts and `stray_braces()` to refuse what nothing renders.
Interpolation is deliberately tiny and the same as in broadcasts and topic replies: `{name}` is
replaced by the slot or fan field of that name (missing -> empty), `{name|default}` by it or,
when it has no value, by the default; `{{`/`}}` are literal braces, and nothing else is
interpreted (no attribute access, no format specs: such braces are content errors).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError
from bot.flows.model import Domain, ResponseVariant
from bot.linkish import PROFILE_SLOTS, shown
from bot.sms import sms_segments  # noqa: F401  (re-exported for content validation)

# `{{`, `}}`, `{name}` or `{name|default}` (the default: up to 40 characters, no braces), as
# `bot.audience.broadcast_model` reads broadcast and topic-reply texts
# names may hold hyphens: Rasa slots such as `amount-of-money` (Duckling's dimension)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_-]*)(?:\|([^{}\n]{0,40}))?\}")


@dataclass(frozen=True, slots=True)
class RenderedResponse:
    name: str
    text: str
    media_urls: tuple[str, ...] = ()


class Responses:
    """The domain's responses, ready to render with a fan's slots and profile."""

    def __init__(self, domain: Domain) -> None:
        self._responses = domain.responses
        self._retrieval = {n.split("/")[0] for n in domain.responses if "/" in n} - set(
            domain.responses
        )

    def __contains__(self, name: str) -> bool:
        return name in self._responses

    def is_retrieval(self, name: str) -> bool:
        return name in self._retrieval

    def render(
        self,
        name: str,
        slots: Mapping[str, Any],
        fan: Mapping[str, Any],
        rng: random.Random,
    ) -> RenderedResponse:
        variants = self._responses.get(name)
        if not variants:
            raise ConfigError(f"unknown response {name!r}")
        variant = rng.choice(choose_variants(variants, slots))
        text = interpolate(variant.text or "", slots, fan)
        return RenderedResponse(name, text, (variant.image,) if variant.image else ())


def is_retrieval_action(name: str, names: Iterable[str]) -> bool:
    """Rasa's retrieval action (`utter_faq`): no response of its own, only `utter_faq/<key>`
    ones; it says the one of the fan's retrieval intent (`faq/<key>`)."""
    prefix = f"{name}/"
    names = list(names)
    return (
        name.startswith("utter_") and name not in names and any(n.startswith(prefix) for n in names)
    )


def choose_variants(
    variants: list[ResponseVariant], slots: Mapping[str, Any]
) -> list[ResponseVariant]:
    """Variants whose conditions hold; conditional ones win over unconditional ones (Rasa)."""
    matching = [
        v
        for v in variants
        if v.condition and all(slots.get(c.name) == c.value for c in v.condition)
    ]
    if matching:
        return matching
    plain = [v for v in variants if not v.condition]
    return plain or list(variants[:1])


def interpolate(template: str, slots: Mapping[str, Any], fan: Mapping[str, Any]) -> str:
    """Replace `{name}` with the slot (or else fan field) called `name`; missing -> '' (or the
    `{name|default}`'s default)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        value = slots.get(name)
        if name in PROFILE_SLOTS:  # a fan field a text filled in: never a link (bot.linkish)
            value = shown(name, value)
        if value is None:
            value = fan.get(name)
        text = _as_text(value)
        return text if text or match.group(2) is None else match.group(2)

    return _PLACEHOLDER.sub(replace, template)


def placeholders(template: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)}


def stray_braces(template: str) -> list[str]:
    """The `{...}` or lone braces no renderer understands ("{first name}", "{0}", "{x:>3}"),
    as written: left in a response they would reach fans literally."""
    rest = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), template)
    return [m.group(0) for m in re.finditer(r"\{[^{}\n]{0,40}\}?|\}", rest)]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value)
    return str(value)
