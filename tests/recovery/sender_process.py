"""A real outbox sender process for the crash-recovery tests: sends until it is killed.

    python tests/recovery/sender_process.py DATABASE_URL TWILIO_BASE_URL

The tests SIGKILL it mid-batch, then settle what it left `sending` with a new sender.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.outbound import OutboundSender  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

OUR_NUMBER = "+15005550006"


async def main(url: str, twilio_url: str) -> None:
    store = Store.open(url, hash_key=b"test-key", migrate=False)
    gateway = TwilioGateway(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number=OUR_NUMBER, base_url=twilio_url
    )
    # 20/s spreads the sends out: at the kill, some are accepted, some still in flight
    sender = OutboundSender(store, gateway, rate_per_second=20, batch_size=5, lanes=2)
    print("sending", flush=True)
    await sender.run(asyncio.Event())  # never stops by itself: the test kills it


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
