"""A real scheduler process for the crash test: passes at one instant until nothing is due.

    python tests/audience/scheduler_process.py DATABASE_URL ISO_INSTANT

The test SIGKILLs it mid-pass; a later pass must finish its jobs without a second text.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.audience.scheduler import TimedFlows  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import load_settings  # noqa: E402


async def main(url: str, at: datetime) -> None:
    env = {"FANLINE_DATABASE_URL": url, "FANLINE_SECRET_KEY": "test"}
    runtime = await Runtime.start(load_settings(ROOT, env=env))
    try:
        timed = TimedFlows(runtime.pipeline)
        print("started", flush=True)
        while await timed.run_pass(at):
            pass
    finally:
        await runtime.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
