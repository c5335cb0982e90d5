"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("FANLINE_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fanline.db'}"
        return
    from bot.storage.db import scratch_schema

    with scratch_schema(PG_URL or "", "t") as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[object]:
    from bot.storage import Store

    s = Store.open(database_url, hash_key=b"test-key")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(autouse=True, scope="session")
def _sentence_encoders_stay_open() -> None:
    """Hundreds of tests start a runtime on the same model: its ONNX session is opened once
    (bot.nlu.embeddings.KEEP_OPEN), not a second or so per runtime."""
    from bot.nlu import embeddings

    embeddings.KEEP_OPEN = True


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
needs_chromium = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="no Chromium at /usr/bin/chromium (apt-get install -y chromium; .ci/run does)",
    ),
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium driven by Playwright (no downloaded browser)."""
    from playwright.async_api import async_playwright, expect

    # a bound on waiting, not a speed claim: live events on a loaded CI machine (PostgreSQL,
    # a retraining in a child process) can take longer than Playwright's default 5 s
    expect.set_options(timeout=30_000)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()
