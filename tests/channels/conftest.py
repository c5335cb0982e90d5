from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from bot.channels.twilio_gateway import TwilioGateway
from bot.testing import serve_in_process
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twilio"
OUR_NUMBER = "+15005550006"


def load_form(name: str) -> dict[str, str]:
    text = (FIXTURES / f"{name}.form").read_text(encoding="utf-8")
    return dict(parse_qsl(text, keep_blank_values=True))


@dataclass
class LocalTwilio:
    server: TwilioServer
    url: str

    def gateway(self, **kw: object) -> TwilioGateway:
        kw.setdefault("from_number", OUR_NUMBER)
        return TwilioGateway(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, base_url=self.url, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def twilio() -> AsyncIterator[LocalTwilio]:
    server = TwilioServer(seed=7)
    async with serve_in_process(server.app) as url:
        yield LocalTwilio(server, url)


@pytest.fixture
async def gateway(twilio: LocalTwilio) -> AsyncIterator[TwilioGateway]:
    gw = twilio.gateway()
    yield gw
    await gw.aclose()
