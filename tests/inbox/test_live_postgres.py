"""The live feed across processes on PostgreSQL (issue 17): every event goes out as a NOTIFY and
every web process's LISTEN hands it to its open feeds, so an agent connected to one process sees
what another committed. Payloads carry ids only; a lost LISTEN connection is reopened."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from bot.inbox.auth import Auth
from bot.inbox.live import LiveEvent, PgLiveHub, libpq_dsn
from bot.storage import Database
from bot.storage.db import scratch_schema
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.cli.test_run import free_port
from tests.conftest import PG_URL, ROOT
from tests.processes import ready

from .conftest import FAST_HASHER, PASSWORD, logged_in
from .test_api import next_event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set"),
]
OUR_NUMBER = "+15005550006"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_schema(PG_URL or "", "live") as url:
        yield url


async def received(queue: asyncio.Queue[LiveEvent], kind: str) -> LiveEvent:
    """The next event of `kind` on a subscriber's queue (bounded wait on the event itself)."""
    async with asyncio.timeout(30):
        while (event := await queue.get()).kind != kind:
            pass
    return event


def terminate_listeners(url: str, channel: str) -> int:
    """What a restarted database or a cut network does to a LISTEN connection."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :a"), {"a": f"fanline {channel}"}).all())  # fmt: skip
    finally:
        engine.dispose()


async def test_an_event_published_in_one_process_reaches_the_feeds_of_another(
    pg_url: str,
) -> None:
    a = PgLiveHub(libpq_dsn(pg_url))  # two processes' hubs: only the database joins them
    b = PgLiveHub(libpq_dsn(pg_url), listen=False)  # a worker: it publishes, no feeds
    with scratch_schema(PG_URL or "", "other") as other_url:
        other = PgLiveHub(libpq_dsn(other_url))  # another deployment in the same database
        await asyncio.gather(a.start(), b.start(), other.start())
        try:
            assert a.channel == b.channel != other.channel
            async with a.subscribe() as feed, other.subscribe() as elsewhere:
                b.publish("escalation", {"contact_id": 3, "message_id": 9, "reason": "fan_asked"})
                event = await received(feed, "escalation")
                assert event.data == {"contact_id": 3, "message_id": 9, "reason": "fan_asked"}
                a.publish("thread", {"conversation_id": 4, "action": "resolve"})  # its own too
                assert (await received(feed, "thread")).data["conversation_id"] == 4
                assert elsewhere.empty()
                for i in range(200):  # a burst goes out in batches: in order, none lost
                    b.publish("message", {"contact_id": 1, "message_id": 1000 + i, "held": False})
                got = [(await received(feed, "message")).data["message_id"] for _ in range(200)]
                assert got == [1000 + i for i in range(200)]

                # the LISTEN connection is cut: the hub reconnects and tells its feeds to resync
                assert terminate_listeners(pg_url, a.channel) == 1
                await received(feed, "resync")
                assert a.resyncs == 1
                b.publish("message", {"contact_id": 5, "message_id": 10, "held": False})
                assert (await received(feed, "message")).data["message_id"] == 10
        finally:
            await asyncio.gather(a.aclose(), b.aclose(), other.aclose())


def fanline(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot", "--project", str(ROOT), "-q", *args],
                            env={**os.environ, **env}, text=True, **kw)  # type: ignore[call-overload]  # fmt: skip


@pytest.fixture
async def two_web_processes(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """`fanline run --role web` twice on one PostgreSQL schema; their base URLs."""
    env = {"FANLINE_DATABASE_URL": pg_url, "FANLINE_SECRET_KEY": "t",
           "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
           "TWILIO_NUMBER": OUR_NUMBER, "TWILIO_API_BASE_URL": "http://127.0.0.1:1"}  # fmt: skip
    upgrade = fanline("db", "upgrade", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert upgrade.wait(timeout=120) == 0, upgrade.communicate()[0]
    db = Database(pg_url)
    try:
        await Auth(db, b"t", hasher=FAST_HASHER).create_agent("ana", PASSWORD, display_name="Ana")
    finally:
        db.close()
    urls, procs, logs = [], [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            logs.append(tmp_path / f"{name}.log")
            procs.append(fanline(
                "run", "--role", "web", "--no-migrate", "--port", str(port),
                env={**env, "FANLINE_PUBLIC_URL": url}, stdout=logs[-1].open("w"),
                stderr=subprocess.STDOUT,
            ))  # fmt: skip
            urls.append(url)
        for url, proc, log in zip(urls, procs, logs, strict=True):
            await ready(url, proc, log)
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


async def test_a_text_to_one_web_process_shows_on_a_feed_opened_on_another(
    two_web_processes: tuple[str, str],
) -> None:
    a, b = two_web_processes
    phone = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    body = "can I talk to a real person please"
    form = {"From": phone, "To": OUR_NUMBER, "Body": body, "NumMedia": "0",
            "MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": TEST_ACCOUNT_SID}  # fmt: skip
    path = "/webhooks/twilio/sms"
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(b + path, form)
    async with (
        logged_in(a, "ana") as (client, _),
        client.stream("GET", "/api/v1/events") as feed,
        httpx.AsyncClient(base_url=b, timeout=60) as twilio,
    ):
        lines = feed.aiter_lines()
        assert await next_event(lines) == ("ready", {})
        r = await twilio.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert r.status_code == 200
        kind, data = await next_event(lines)  # on process a: the turn process b committed
        assert kind in ("message", "escalation"), (kind, data)
        assert set(data) <= {"contact_id", "message_id", "held", "reason", "priority", "joined"}
        assert phone not in json.dumps(data) and body not in json.dumps(data)
        thread = await client.get("/api/v1/queue", params={"view": "all"})
        assert thread.status_code == 200  # the feed names ids; the API (authenticated) the rest
