"""Logging set-up: text or JSON lines, and a last line of defence against personal data.

Code logs contacts by internal id (`extra={"contact_id": ...}`), never a number or a text. The
redacting filter still masks anything shaped like a phone number, in messages and in exception
text alike, and drops what a database error quotes of the data it failed on (SQLAlchemy's
`[parameters: ...]`, PostgreSQL's `DETAIL:` lines), in case a library or a future change slips
one in. Sanic's own loggers are routed through the same handler, so with JSON every line is JSON.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO

_PHONE = re.compile(r"\+?\d[\d\s().-]{8,}\d")
# what a driver or SQLAlchemy quotes of the row it failed on: the values, never ours to log
_QUOTED_DATA = (
    (re.compile(r"\[parameters: .*?\](?=\n|$)", re.DOTALL), "[parameters: hidden]"),
    (re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE), r"\1 [hidden]"),
    (re.compile(r"(Failing row contains|Key) \(.*$", re.MULTILINE), r"\1 [hidden]"),
)
_FIELDS = ("contact_id", "message_id", "flow", "intent")
# routed to our handler: they would otherwise print their own (non-JSON) lines
LIBRARY_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")


def scrub(text: str) -> str:
    """Text with phone numbers masked and quoted database values dropped."""
    for pattern, replacement in _QUOTED_DATA:
        text = pattern.sub(replacement, text)
    return _PHONE.sub("[number]", text)


class RedactPhoneNumbers(logging.Filter):
    """Scrubs the message, the exception text and the stack of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:  # formatted once here, scrubbed, and kept as the record's text
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = scrub(text), None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _FIELDS if hasattr(record, k)})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["error"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


class _FanlineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours: recognised when configuring again, so other handlers (pytest's) are left alone."""


def configure(
    *, json_lines: bool = False, level: int = logging.INFO, stream: IO[str] | None = None
) -> None:
    handler = _FanlineHandler(stream or sys.stderr)
    handler.addFilter(RedactPhoneNumbers())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _FanlineHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    adopt_library_loggers()
    # their INFO lines are not ours to show; the twilio SDK would log request parameters (To, Body)
    for noisy in ("alembic", "rasa_sdk", "httpx", "twilio", "sanic.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def adopt_library_loggers() -> None:
    """Sanic's loggers lose their own handlers and go through ours (the root's)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def ensure_configured(*, json_lines: bool = False) -> None:
    """In a server worker process: configure logging if nothing has (a spawned worker starts
    blank), and route Sanic's loggers through the root's handlers either way."""
    if not logging.getLogger().handlers:
        configure(json_lines=json_lines)
    adopt_library_loggers()
