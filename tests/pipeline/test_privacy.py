"""No personal data in logs: a whole conversation, including failures, logs ids only."""

from __future__ import annotations

import logging
import uuid

import pytest

from bot.logs import JsonFormatter, RedactPhoneNumbers
from bot.messages import InboundSms
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.conftest import ROOT


async def test_a_conversation_logs_no_number_and_no_text(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    number, secret = "+15555550177", "my address is 12 Elm Street"
    # an unreachable action server makes the turn fail and log: the worst case for leaks
    env = {
        "FANLINE_DATABASE_URL": database_url,
        "FANLINE_ACTION_ENDPOINT": "http://127.0.0.1:9/webhook",
    }
    runtime = await Runtime.start(load_settings(ROOT, env=env))
    caplog.set_level(logging.DEBUG)
    try:
        for body in ("hi", "yes", "any shows near 90210?", secret, "STOP"):
            await runtime.handle(InboundSms(f"SM{uuid.uuid4().hex}", number, "+15550100000", body))
    finally:
        await runtime.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records  # the failing action was logged
    assert number not in logged and number[2:] not in logged
    assert secret not in logged and "90210" not in logged


def test_the_log_filter_masks_numbers_that_slip_through() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "texting %s now", ("+1 (555) 555-0177",), None
    )
    RedactPhoneNumbers().filter(record)
    line = JsonFormatter().format(record)
    assert "555" not in line and "[number]" in line and '"level": "info"' in line
