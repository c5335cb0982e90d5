"""A real broadcast sender process for the crash tests: enqueue, then send until nothing is due.

    python tests/broadcasts/sender_process.py DATABASE_URL TWILIO_BASE_URL BROADCAST_ID

The tests SIGKILL it mid-broadcast and start it again; it must pick up where it stopped.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.audience.broadcasts import BroadcastService  # noqa: E402
from bot.channels.twilio_gateway import TwilioGateway  # noqa: E402
from bot.outbound import OutboundSender  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN  # noqa: E402

HASH_KEY = b"test-key"


async def main(url: str, twilio_url: str, broadcast_id: int) -> None:
    store = Store.open(url, hash_key=HASH_KEY)
    service = BroadcastService(store, chunk_size=20)
    await service.enqueue(broadcast_id)
    gateway = TwilioGateway(
        TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006", base_url=twilio_url
    )
    sender = OutboundSender(store, gateway, rate_per_second=200, batch_size=5, lanes=2)
    try:
        while (await service.stats(broadcast_id)).count("queued"):
            await sender.send_batch()
    finally:
        await gateway.aclose()
        store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
