"""The inbox's own configuration: canned replies (`canned_replies.yml`) and the `inbox:` section of
`config.yml` (session length, the optional escalation webhook). Read once at start-up.

Errors name the file, line and key, like every other content error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Location
from bot.flows.loader import read_yaml

CANNED_FILE = "canned_replies.yml"


@dataclass(frozen=True, slots=True)
class CannedReply:
    key: str
    title: str
    text: str  # may hold {first_name}; filled in for the thread it is used in

    def for_fan(self, first_name: str | None) -> str:
        return self.text.replace("{first_name}", first_name or "there")


@dataclass(frozen=True, slots=True)
class InboxConfig:
    canned: tuple[CannedReply, ...] = ()
    session_hours: float = 12.0
    webhook_url: str | None = None
    webhook_secret: bytes | None = None


def load_inbox_config(project_dir: Path, section: dict[str, Any] | None = None) -> InboxConfig:
    """`section`: the `inbox:` mapping as Settings read it (with ${VAR} expanded, so the
    webhook secret can come from the environment); read from config.yml when not given."""
    parsed, where = _inbox_section(project_dir / "config.yml")
    if section is None:
        section = parsed
    hours = section.get("session_hours", 12)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        raise ConfigError("must be a positive number of hours", where("session_hours"))
    url = section.get("webhook_url") or None
    secret = section.get("webhook_secret") or None
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigError("must be an http(s) URL", where("webhook_url"))
    if url is not None and not secret:
        raise ConfigError("a webhook needs a webhook_secret to sign with", where("webhook_url"))
    return InboxConfig(
        canned=load_canned_replies(project_dir / CANNED_FILE),
        session_hours=float(hours),
        webhook_url=str(url) if url else None,
        webhook_secret=str(secret).encode() if secret else None,
    )


def _inbox_section(path: Path) -> tuple[dict[str, Any], Any]:
    data = read_yaml(path) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    section = data.get("inbox") or {}
    lines = getattr(section, "key_lines", {})

    def where(key: str) -> Location:
        return Location(str(path), lines.get(key), f"inbox.{key}")

    if not isinstance(section, dict):
        raise ConfigError("expected a mapping", Location(str(path), None, "inbox"))
    return section, where


def load_canned_replies(path: Path) -> tuple[CannedReply, ...]:
    """`canned_replies: {key: {title: ..., text: ...}}`; a missing file means none."""
    if not path.exists():
        return ()
    data = read_yaml(path) or {}
    file = str(path)
    replies = data.get("canned_replies") if isinstance(data, dict) else None
    if not isinstance(replies, dict):
        raise ConfigError(
            "expected a mapping `canned_replies:`", Location(file, 1, "canned_replies")
        )
    lines = getattr(replies, "key_lines", {})
    out = []
    for key, value in replies.items():
        where = Location(file, lines.get(key), f"canned_replies.{key}")
        if not isinstance(value, dict):
            raise ConfigError("expected a mapping with `title` and `text`", where)
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("`text` must be a non-empty string", where)
        unknown = set(value) - {"title", "text"}
        if unknown:
            raise ConfigError(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}", where)
        out.append(CannedReply(str(key), str(value.get("title") or key), text.strip()))
    return tuple(out)
