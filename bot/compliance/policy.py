"""A line's compliance setting: `fanline.compliance:` in config.yml, validated with file and line.

    fanline:
      compliance:
        phrase_model: true     # false: keywords, typos and explicit wording only
        opt_out_sure: 0.5      # the phrase model's probability that unsubscribes at once
        opt_out_ask: 0.3       # from here up to sure: "Reply STOP to stop all texts?" (asked once)
        help_start_sure: 0.8   # HELP / START in plain words

Carrier keywords (STOP, UNSUBSCRIBE, START, HELP ...), their typos and explicit wording ("stop
texting me") can never be turned off: they are the law's floor, not a tuning choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError, Location


@dataclass(frozen=True, slots=True)
class Policy:
    phrase_model: bool = True
    # the model is trained against ordinary language and the line's own examples, and a decision
    # must be about the texts (bot.compliance.subject): lower bands than a model without them
    opt_out_sure: float = 0.50  # at or above: unsubscribed
    opt_out_ask: float = 0.30  # from here up to sure: asked once
    help_start_sure: float = 0.80  # START / HELP in plain words


DEFAULT = Policy()
_BANDS = ("opt_out_sure", "opt_out_ask", "help_start_sure")


def compliance_settings(value: Any, path: str, line: int | None = None) -> Policy:
    """`fanline.compliance:` (None: the defaults); ConfigError names file, line and key."""
    if value is None:
        return DEFAULT
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", Location(path, line, "fanline.compliance"))
    lines = getattr(value, "key_lines", {})
    out: dict[str, Any] = {}
    for key, setting in value.items():
        where = Location(path, lines.get(key, line), f"fanline.compliance.{key}")
        if key == "phrase_model":
            if not isinstance(setting, bool):
                raise ConfigError(f"must be true or false, got {setting!r}", where)
        elif key in _BANDS:
            if (
                isinstance(setting, bool)
                or not isinstance(setting, int | float)
                or not (0 < setting <= 1)
            ):
                raise ConfigError(f"must be a probability above 0 and at most 1, got {setting!r}",
                                  where)  # fmt: skip
            setting = float(setting)
        else:
            raise ConfigError(
                f"unknown setting: use phrase_model, {', '.join(_BANDS)} (keywords, their "
                "typos and explicit wording cannot be turned off)",
                where,
            )
        out[key] = setting
    policy = Policy(**out)
    if policy.opt_out_ask > policy.opt_out_sure:
        key = "opt_out_ask"
        raise ConfigError(
            f"opt_out_ask ({policy.opt_out_ask:g}) must not be above opt_out_sure "
            f"({policy.opt_out_sure:g})",
            Location(path, lines.get(key, line), f"fanline.compliance.{key}"),
        )
    return policy
