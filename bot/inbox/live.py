"""Live inbox: a hub pushing committed turns to agents' browsers (Server-Sent Events) and,
optionally, posting a signed webhook when a thread escalates (a team chat, a pager).

It sits after step 9 of the message's path: the pipeline's `on_commit` hook calls
`LiveHub.publish_outcome` once the turn is stored, so nothing is announced that could still roll
back. Events carry ids, never phone numbers or message bodies; the browser fetches the thread
through the authenticated API.

`LiveHub` delivers within its process (SQLite: one process). On PostgreSQL, `PgLiveHub` sends
every event as a NOTIFY on one channel per schema and each web process LISTENs on its own
connection, so an agent connected to any process sees what every process (web or worker)
committed. A NOTIFY payload can show in PostgreSQL's logs: it carries the same ids only. A lost
listening connection is reopened, and the process's open feeds then get a `resync` event (the
browser refreshes what it shows: events sent meanwhile did not reach this process).
"""

from __future__ import annotations

import asyncio
import contextlib
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
        return self._deliver(LiveEvent(kind, data))

    async def start(self) -> None:
        """Connect what the hub needs beyond this process (nothing here; see PgLiveHub)."""

    def _deliver(self, event: LiveEvent) -> int:
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


class PgLiveHub(LiveHub):
    """The live feed across processes on PostgreSQL: NOTIFY out, LISTEN in (module docstring).

    `publish` stays synchronous (it is called from commit hooks): it queues the event, and one
    task sends the queue's events in order on an autocommit connection. With `listen` (web
    processes) another connection LISTENs and hands every event, this process's own included,
    to the open streams. Until `start` (and after `aclose`), events stay in this process.
    """

    def __init__(self, dsn: str, *, listen: bool = True, **kw: Any):
        super().__init__(**kw)
        self.dsn, self.listen = dsn, listen
        self.channel = ""
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        self.resyncs = 0  # how many times the LISTEN connection was reopened
        self._outgoing: asyncio.Queue[str] | None = None
        self._sender: Any = None
        self._background: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        import psycopg

        self._sender = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        schema = (await (await self._sender.execute("SELECT current_schema()")).fetchone())[0]
        self.channel = channel_for(schema)
        self._outgoing = asyncio.Queue(OUTGOING_LIMIT)
        self._background.append(asyncio.create_task(self._send(), name="live-notify"))
        if self.listen:
            self._background.append(asyncio.create_task(self._listen(), name="live-listen"))
            # the first LISTEN before this process serves: no event of its own start is missed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listening.wait(), CONNECT_TIMEOUT_S)

    def publish(self, kind: str, data: dict[str, Any]) -> int:
        if self._outgoing is None:
            return super().publish(kind, data)
        payload = json.dumps({"k": kind, "d": data}, separators=(",", ":"))
        try:
            self._outgoing.put_nowait(payload)
        except asyncio.QueueFull:  # the database has not answered for a long while
            log.warning("live feed: %d events waiting for PostgreSQL; one dropped", OUTGOING_LIMIT)
        return len(self._subscribers)

    async def _send(self) -> None:
        assert self._outgoing is not None
        while True:
            # what queued meanwhile goes in the same round trip (a burst of turns), in order
            payloads = [await self._outgoing.get()]
            while len(payloads) < BATCH and not self._outgoing.empty():
                payloads.append(self._outgoing.get_nowait())
            for attempt in (1, 2):  # a lost connection: reopened once for these events
                try:
                    if self._sender is None or self._sender.closed:
                        import psycopg

                        self._sender = await psycopg.AsyncConnection.connect(
                            self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                        )
                    # bounded: a connection that hangs (a cut network) is dropped and reopened
                    # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    # that lands as the query completes, and aclose() would wait forever)
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        await self._sender.execute(
                            "SELECT count(pg_notify(%s, p)) FROM unnest(%s::text[]) AS p",
                            (self.channel, payloads),
                        )
                    break
                except Exception as exc:  # noqa: BLE001 - the feed must outlive the database
                    await _close(self._sender)
                    self._sender = None
                    if attempt == 2:  # at least this process's agents see them
                        log.warning("live feed: NOTIFY failed (%s); %d event(s) kept in this "
                                    "process", type(exc).__name__, len(payloads))  # fmt: skip
                        for payload in payloads:
                            self._receive(payload)

    async def _listen(self) -> None:
        import psycopg

        delay = RECONNECT_S[0]
        lost = False
        while True:
            conn = None
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                    application_name=f"fanline {self.channel}",
                )  # fmt: skip
                await conn.execute(f"LISTEN {self.channel}")  # channel_for: [a-z0-9_] only
                self.listening.set()
                delay = RECONNECT_S[0]
                if lost:  # events sent while this process was not listening did not reach it
                    lost = False
                    self.resyncs += 1
                    log.info("live feed: listening again; open feeds resync")
                    self._deliver(LiveEvent("resync", {}))
                while True:
                    async for note in conn.notifies(timeout=PING_S):
                        self._receive(note.payload)
                    # a quiet while: is the connection alive? (a cut network hangs, not fails)
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                await _close(conn)
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect whatever broke
                self.listening.clear()
                if not lost:
                    log.warning("live feed: lost its PostgreSQL connection (%s); reconnecting",
                                type(exc).__name__)  # fmt: skip
                lost = True
                await _close(conn)
                await asyncio.sleep(delay)  # back off while the database is away
                delay = min(delay * 2, RECONNECT_S[1])

    def _receive(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            event = LiveEvent(str(message["k"]), dict(message["d"]))
        except (ValueError, KeyError, TypeError):
            log.warning("live feed: an unreadable notification ignored")
            return
        self._deliver(event)

    async def aclose(self) -> None:
        # cancelled again until done: a cancel can be lost in a library's own wait (Python
        # 3.11's wait_for), and a task still running would hold the shutdown for ever
        pending = set(self._background)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self._background.clear()
        self._outgoing = None
        await _close(self._sender)
        self._sender = None
        await super().aclose()


OUTGOING_LIMIT = 10_000
BATCH = 200  # events sent in one statement at most
CONNECT_TIMEOUT_S = 10
PING_S = 30.0  # a LISTEN connection quiet this long is checked with a query
RECONNECT_S = (0.5, 5.0)  # first and longest pause between reconnections


def channel_for(schema: str) -> str:
    """The NOTIFY channel of a deployment: one per schema (channels are per database, and a
    database may hold several deployments' schemas, tests' scratch schemas included)."""
    return "fanline_live_" + hashlib.blake2b(schema.encode(), digest_size=6).hexdigest()


def libpq_dsn(database_url: str) -> str:
    """A SQLAlchemy URL of ours as a libpq connection string (psycopg connects with it)."""
    import sqlalchemy as sa

    from bot.storage.db import normalise_url

    url = sa.engine.make_url(normalise_url(database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _close(conn: Any) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()


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
                async with asyncio.timeout(KEEPALIVE_S):  # (wait_for may swallow a cancel)
                    event = await queue.get()
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
