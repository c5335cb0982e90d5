"""The local phone simulator: page, send, and replies arriving live over Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sanic import Sanic

from bot.channels.simulator import SimulatorFeed, normalise_number, simulator_blueprint
from bot.channels.twilio_gateway import LocalGateway
from bot.messages import InboundSms
from bot.outbound import OutboundSender
from bot.testing import serve_in_process

from .memory_store import MemoryOutboxStore


class EchoBot:
    """Stands in for the pipeline: queues a reply in the outbox and lets the sender deliver it."""

    def __init__(self, feed: SimulatorFeed) -> None:
        self.store = MemoryOutboxStore()
        self.sender = OutboundSender(self.store, LocalGateway(feed), rate_per_second=100)
        self.seen: list[InboundSms] = []

    async def handle_local(self, inbound: InboundSms) -> None:
        self.seen.append(inbound)
        self.store.add(inbound.sender, f"you said: {inbound.body}")
        await self.sender.drain()


_apps = iter(range(10_000))


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, EchoBot]]:
    feed = SimulatorFeed()
    bot = EchoBot(feed)
    app = Sanic(f"simulator_test_{next(_apps)}")
    app.blueprint(simulator_blueprint(bot.handle_local, feed))
    async with serve_in_process(app) as url:
        yield url, bot


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict]:
    event, data = "message", None
    async for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            return event, data
    raise AssertionError("stream ended")


async def test_round_trip_through_the_outbox_and_sse(simulator) -> None:
    url, bot = simulator
    evil = "<img src=x onerror=alert(1)> 💖"
    async with (
        httpx.AsyncClient(base_url=url, timeout=10) as http,
        http.stream("GET", "/simulator/events", params={"number": "(415) 555-0123"}) as stream,
    ):
        lines = stream.aiter_lines()
        assert await next_event(lines) == ("ready", {"number": "+14155550123"})
        sent = await http.post("/simulator/send", json={"from": "415-555-0123", "body": evil})
        assert sent.status_code == 200 and sent.json()["from"] == "+14155550123"
        assert await next_event(lines) == (
            "message",
            {"body": f"you said: {evil}", "media_urls": []},
        )
    [inbound] = bot.seen
    assert inbound.sender == "+14155550123" and inbound.channel_id.startswith("SIM")
    assert bot.store.rows[1].status == "sent"


async def test_page_is_served_with_a_strict_policy_and_no_html_injection(simulator) -> None:
    url, _ = simulator
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/simulator")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'name="viewport"' in page.text
    assert "innerHTML" not in page.text and "textContent" in page.text


@pytest.mark.parametrize(
    "payload",
    [
        {"from": "hello", "body": "x"},
        {"from": "+14155550123", "body": ""},
        {"from": "+14155550123", "body": "x" * 1601},
        ["not", "an", "object"],
    ],
)
async def test_bad_sends_are_400(simulator, payload) -> None:
    url, bot = simulator
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/simulator/send", json=payload)
    assert answer.status_code == 400 and bot.seen == []


async def test_events_need_a_number(simulator) -> None:
    url, _ = simulator
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/simulator/events", params={"number": "nope"})).status_code == 400


def test_normalise_number() -> None:
    assert normalise_number("+44 20 7946 0958") == "+442079460958"
    assert normalise_number("(415) 555-0123") == "+14155550123"
    assert normalise_number("12") is None and normalise_number("abc") is None
