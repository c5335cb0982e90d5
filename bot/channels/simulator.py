"""Local mode's channel: a phone-like web page where a person texts the bot as any number.

POST /simulator/send feeds an `InboundSms` into the same pipeline as Twilio's webhook; replies
come back through the outbox and `LocalGateway`, which publishes them to `SimulatorFeed`, and
reach the page live over Server-Sent Events (GET /simulator/events?number=...).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html
from sanic.response import json as json_response

from bot.messages import InboundSms

PAGE = Path(__file__).with_name("static") / "simulator.html"
SIMULATOR_NUMBER = "+15005550006"  # "our" number in local mode
_MAX_BODY = 1600
_QUEUE_LIMIT = 256  # a stalled browser tab must not grow memory without bound
_KEEPALIVE_S = 15.0


@dataclass(frozen=True, slots=True)
class FeedMessage:
    to: str
    body: str
    media_urls: tuple[str, ...] = ()


class SimulatorFeed:
    """In-process pub/sub of outgoing texts, keyed by the fan's number."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[FeedMessage]]] = {}

    def publish(self, to: str, body: str, media_urls: tuple[str, ...] = ()) -> int:
        """Hand a text to every page open on `to`; return how many received it."""
        message = FeedMessage(to, body, tuple(media_urls))
        queues = self._subscribers.get(to, set())
        for queue in queues:
            if queue.full():
                queue.get_nowait()  # drop the oldest rather than block the sender
            queue.put_nowait(message)
        return len(queues)

    @asynccontextmanager
    async def subscribe(self, number: str) -> AsyncIterator[asyncio.Queue[FeedMessage]]:
        queue: asyncio.Queue[FeedMessage] = asyncio.Queue(_QUEUE_LIMIT)
        self._subscribers.setdefault(number, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(number, set())
            queues.discard(queue)
            if not queues:
                self._subscribers.pop(number, None)

    def subscribers(self, number: str) -> int:
        return len(self._subscribers.get(number, ()))


def normalise_number(raw: str, region: str = "US") -> str | None:
    """E.164 for anything a person might type ("(415) 555-0100", "+44 20 ..."), else None."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def simulator_blueprint(
    handle_local: Callable[[InboundSms], Awaitable[Any]],
    feed: SimulatorFeed,
    *,
    name: str = "simulator",
    our_number: str = SIMULATOR_NUMBER,
) -> Blueprint:
    bp = Blueprint(name)
    page = PAGE.read_text(encoding="utf-8")

    @bp.get("/simulator")
    async def show(request: Request) -> HTTPResponse:
        headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}
        return html(page, headers=headers)

    @bp.post("/simulator/send")
    async def send(request: Request) -> HTTPResponse:
        data = request.json if request.content_type.startswith("application/json") else None
        if not isinstance(data, dict):
            return json_response({"error": "expected a JSON object {from, body}"}, status=400)
        sender = normalise_number(str(data.get("from", "")))
        body = data.get("body")
        if sender is None:
            return json_response({"error": "'from' is not a phone number"}, status=400)
        if not isinstance(body, str) or not body.strip() or len(body) > _MAX_BODY:
            return json_response({"error": "'body' must be 1-1600 characters"}, status=400)
        inbound = InboundSms(f"SIM{uuid.uuid4().hex}", sender, our_number, body)
        await handle_local(inbound)
        return json_response({"ok": True, "from": sender, "id": inbound.channel_id})

    @bp.get("/simulator/events")
    async def events(request: Request) -> None:
        number = normalise_number(request.args.get("number", ""))
        if number is None:
            await request.respond(status=400, content_type="text/plain")
            return
        response = await request.respond(
            content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
        async with feed.subscribe(number) as queue:
            await response.send(f"event: ready\ndata: {json.dumps({'number': number})}\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
                except TimeoutError:
                    await response.send(": keep-alive\n\n")
                    continue
                payload = {"body": message.body, "media_urls": list(message.media_urls)}
                await response.send(f"data: {json.dumps(payload)}\n\n")

    return bp


# The page's inline script and style are ours; nothing else may run or load.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' https: data:; base-uri 'none'; form-action 'none'"
)
