"""Logging set-up: text or JSON lines, and a last line of defence against personal data.

Code logs contacts by internal id (`extra={"contact_id": ...}`), never a number or a text. The
redacting filter still masks anything shaped like a phone number, in case a library or a future
change slips one in.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_PHONE = re.compile(r"\+?\d[\d\s().-]{8,}\d")
_FIELDS = ("contact_id", "message_id", "flow", "intent")


class RedactPhoneNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _PHONE.search(message):
            record.msg, record.args = _PHONE.sub("[number]", message), None
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
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(*, json_lines: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactPhoneNumbers())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # their INFO lines are not ours to show; the twilio SDK would log request parameters (To, Body)
    for noisy in ("alembic", "rasa_sdk", "httpx", "twilio", "sanic.access"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
