"""Helpers for tests that start real `fanline run` processes."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx


async def ready(url: str, process: subprocess.Popen[str], log: Path) -> None:
    """Wait (bounded) until a starting server answers /readyz 200."""
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = time.monotonic() + 300  # a bound on start-up under load, not a speed claim
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)  # polling a starting process
    raise AssertionError("not ready: " + log.read_text()[-3000:])
