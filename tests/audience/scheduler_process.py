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

from bot.actions import ActionRunner  # noqa: E402
from bot.audience.scheduler import TimedFlows  # noqa: E402
from bot.content import load_content  # noqa: E402
from bot.locks import ContactLocks  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.runtime import _libpq_dsn, build_engine  # noqa: E402
from bot.storage import Store  # noqa: E402


async def main(url: str, at: datetime) -> None:
    # the demo's content without its NLU model: timed turns read no fan text (quick to start)
    content = load_content(ROOT)
    store = Store.open(url, hash_key=b"test")
    pg = store.db.engine.dialect.name == "postgresql"
    locks = ContactLocks(_libpq_dsn(store.db.engine.url) if pg else None)
    actions = ActionRunner(package=None)
    pipeline = Pipeline(
        store=store, locks=locks, engine=build_engine(content, None), interpreter=None,
        actions=actions,
    )  # fmt: skip
    try:
        timed = TimedFlows(pipeline)
        while await timed.run_pass(at):
            pass
    finally:
        await actions.aclose()
        await locks.aclose()
        store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
