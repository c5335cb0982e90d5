"""Fuzzing with hypothesis: bounded, derandomised example counts so CI is repeatable."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, settings

# a few dozen examples per property; FANLINE_FUZZ_EXAMPLES=2000 for a long local run
settings.register_profile(
    "fanline",
    max_examples=int(os.environ.get("FANLINE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=not os.environ.get("FANLINE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("fanline")


class Tracebacks(logging.Handler):
    """Every log record at ERROR or above, and any that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Tracebacks:
    handler = Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    loggers = [logging.getLogger(n) for n in ("sanic.error", "sanic.root", "sanic.server")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    for lg in loggers:
        lg.removeHandler(handler)
