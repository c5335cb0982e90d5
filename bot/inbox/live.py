"""Live inbox: an in-process hub pushing committed turns to agents' browsers (Server-Sent Events)
and, optionally, posting a signed webhook when a thread escalates (a team chat, a pager).

It sits after step 9 of the message's path: the pipeline's `on_commit` hook calls
`LiveHub.publish_outcome` once the turn is stored, so nothing is announced that could still roll
back. Events carry ids, never phone numbers or message bodies; the browser fetches the thread
through the authenticated API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)
_QUEUE_LIMIT = 256  # a stalled tab drops its oldest events instead of growing without bound
KEEPALIVE_S = 15.0
SIGNATURE_HEADER = "X-Fanline-Signature"
TIMESTAMP_HEADER = "X-Fanline-Timestamp"
SESSION_CHECK_S = 1.0  # an open feed re-reads its session at most this often (one small query)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # message | escalation | thread (an agent changed a thread)
    data: dict[str, Any] = field(default_factory=dict)

    def sse(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The webhook signature: HMAC-SHA256 over "<timestamp>.<body>", hex, prefixed "sha256="."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def verify(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, max_age_s: int = 300
) -> bool:
    """For receivers: a valid signature on a fresh timestamp (replays of old posts fail)."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class Webhook:
    """Posts escalations to one URL, signed; failures are logged and never reach the turn."""

    def __init__(self, url: str, secret: bytes, *, timeout_s: float = 5.0):
        self.url, self.secret = url, secret
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def post(self, payload: dict[str, Any]) -> int | None:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                   SIGNATURE_HEADER: sign(self.secret, stamp, body)}  # fmt: skip
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("inbox webhook failed: %s", exc.__class__.__name__)
            return None
        if response.status_code >= 400:
            log.warning("inbox webhook answered %s", response.status_code)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


class LiveHub:
    """In-process pub/sub for the inbox's live feed (one per server process)."""

    def __init__(self, *, webhook: Webhook | None = None, inbox_url: str = ""):
        self._subscribers: set[asyncio.Queue[LiveEvent]] = set()
        self.webhook = webhook
        self.inbox_url = inbox_url.rstrip("/")
        self._tasks: set[asyncio.Task[Any]] = set()
        self.session_check_s = SESSION_CHECK_S

    def publish_outcome(self, outcome: Any) -> None:
        """Called after every committed turn (bot.pipeline.TurnOutcome)."""
        if outcome.duplicate:
            return
        ids = {"contact_id": outcome.contact_id, "message_id": outcome.message_id}
        escalation = outcome.escalation
        if escalation is not None:
            data = {**ids, "reason": escalation.get("reason"),
                    "priority": escalation.get("priority", "normal")}  # fmt: skip
            if escalation.get("joined"):  # one more text on an open escalation: no new page
                self.publish("escalation", {**data, "joined": True})
                return
            self.publish("escalation", data)
            self._notify_webhook(data)
        else:
            self.publish("message", {**ids, "held": outcome.held})

    def publish(self, kind: str, data: dict[str, Any]) -> int:
        """Hand an event to every open stream; return how many received it."""
        event = LiveEvent(kind, data)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[LiveEvent]]:
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(_QUEUE_LIMIT)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _notify_webhook(self, data: dict[str, Any]) -> None:
        if self.webhook is None:
            return
        payload = {"type": "escalation", **data,
                   "url": f"{self.inbox_url}/inbox/fans/{data['contact_id']}"}  # fmt: skip
        task = asyncio.get_running_loop().create_task(self.webhook.post(payload))
        self._tasks.add(task)  # keep a reference until done: the loop holds only weak ones
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.webhook is not None:
            await self.webhook.aclose()


async def stream(
    response: Any, hub: LiveHub, still_valid: Callable[[], Awaitable[bool]] | None = None
) -> None:
    """Write the hub's events to an open SSE response until the client goes away, or until
    `still_valid` says the session is over (logged out, expired, agent disabled): it is asked
    before an event or keep-alive goes out, at most every `hub.session_check_s`, so a feed
    never outlives its session by more than that."""
    checked = time.monotonic()

    async def valid() -> bool:
        nonlocal checked
        if still_valid is None or time.monotonic() - checked < hub.session_check_s:
            return True
        checked = time.monotonic()
        return await still_valid()

    async with hub.subscribe() as queue:
        await response.send(LiveEvent("ready", {}).sse())
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if not await valid():
                    break
                await response.send(": keep-alive\n\n")
                continue
            if not await valid():
                break
            await response.send(event.sse())
    # the browser reconnects by itself; this one then gets a 401 and goes to the login page
    await response.send(LiveEvent("ended", {}).sse())
    await response.eof()
