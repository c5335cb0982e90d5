"""No personal data in logs (database errors and tracebacks included), JSON lines from every
logger of a real server, and erasure that leaves nothing in SQLite's files (issue 9, item 7)."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bot import logs
from bot.audience.privacy import erase_fan
from bot.messages import InboundSms
from bot.storage import Store
from bot.storage.tables import messages
from tests.conftest import ROOT

NUMBER = "+14155550199"
BODY = "meet me at the zebra stage door"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Our own log handler (the production filter and format) writing into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    logs.configure(json_lines=True, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = before
        root.setLevel(level)


async def test_a_real_database_error_logs_neither_the_number_nor_the_text(
    store: Store, captured: io.StringIO
) -> None:
    # NOT NULL violated with a number and a text in the row: SQLAlchemy quotes the parameters,
    # PostgreSQL its "Failing row contains (...)"
    bad = messages.insert().values(direction=None, from_number=NUMBER, body=BODY, kind="sms",
                                   status="received", created_at=sa.func.now())  # fmt: skip
    try:
        await store.db.run(lambda c: c.execute(bad))
    except Exception as exc:
        assert "direction" in str(exc)  # a real error, not a stand-in
        logging.getLogger("bot.test").exception("the insert failed")
    else:
        raise AssertionError("the insert should have failed")
    text = captured.getvalue()
    assert "the insert failed" in text and "IntegrityError" in text
    assert NUMBER not in text and NUMBER[2:] not in text and BODY not in text
    for line in text.splitlines():
        json.loads(line)


def test_tracebacks_are_scrubbed_like_messages(captured: io.StringIO) -> None:
    try:
        raise ValueError(f"lookup failed for {NUMBER}\nDETAIL:  Key (body)=({BODY}) exists")
    except ValueError:
        logging.getLogger("bot.test").exception("oops")
    logging.getLogger("bot.test").warning("stack", stack_info=True, extra={"contact_id": 7})
    text = captured.getvalue()
    assert "[number]" in text and NUMBER[2:] not in text and BODY not in text


async def test_erasure_leaves_nothing_in_the_sqlite_files_while_others_are_connected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fanline.db"
    store = Store.open(f"sqlite:///{path}", hash_key=b"test")
    server = sqlite3.connect(path)  # the running server's connection, say
    try:
        for i in range(3):
            msg = InboundSms(f"SM{i:032d}", NUMBER, "+15005550006", f"{BODY} {i}")
            await store.record_inbound(msg)
        server.execute("SELECT count(*) FROM messages").fetchall()
        await erase_fan(store, NUMBER)
        for name in ("fanline.db", "fanline.db-wal", "fanline.db-shm"):
            data = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else b""
            for secret in (NUMBER, NUMBER[2:], BODY):
                assert secret.encode() not in data, f"{secret!r} still in {name}"
        assert server.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    finally:
        server.close()
        store.close()


def test_json_logs_are_json_on_every_line_of_a_real_server(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FANLINE_PORT": str(port), "FANLINE_LOG_FORMAT": "json",
           "FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db", "FANLINE_SECRET_KEY": "test",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    out = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "--project", str(ROOT), "run"],
        env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(server, base)
        httpx.get(base + "/nowhere", timeout=5)  # Sanic's own 404 handling
        httpx.post(base + "/webhooks/twilio/sms", data={"From": NUMBER}, timeout=5)  # unsigned
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        out.close()
    lines = [line for line in (tmp_path / "server.log").read_text().splitlines() if line.strip()]
    loggers = set()
    for line in lines:
        entry = json.loads(line)  # every line, Sanic's included
        loggers.add(entry["logger"])
    assert any(name.startswith("sanic") for name in loggers), loggers
    assert NUMBER not in "\n".join(lines)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(server: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 120  # bounded: the model loads first
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)  # still starting: poll again
    raise AssertionError("the server did not become ready")
