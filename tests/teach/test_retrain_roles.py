"""Retraining in the worker role (issue 17): a web process records the teach's request, the
worker trains it, and the web process reloads the model it made and says so (/api/v1/model)."""

from __future__ import annotations

import asyncio
import html
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from bot.inbox.auth import Auth
from bot.storage import Database
from bot.storage.db import scratch_schema
from bot.teach import requests
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.cli.test_run import free_port
from tests.conftest import PG_URL
from tests.inbox.conftest import FAST_HASHER, PASSWORD, logged_in
from tests.processes import ready
from tests.teach.conftest import PIPELINE
from tests.teach.test_teach import NEW_PHRASING, PARKING, PARKING_ANSWER

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set"),
]
OUR_NUMBER = "+15005550006"


def fanline(project: Path, *args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot", "--project", str(project), "-q", *args],
                            env={**os.environ, **env}, text=True, **kw)  # type: ignore[call-overload]  # fmt: skip


async def text(url: str, phone: str, body: str) -> str:
    form = {"From": phone, "To": OUR_NUMBER, "Body": body, "NumMedia": "0",
            "MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": TEST_ACCOUNT_SID}  # fmt: skip
    path = "/webhooks/twilio/sms"
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(url + path, form)
    async with httpx.AsyncClient(base_url=url, timeout=180) as client:
        r = await client.post(path, data=form, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200
    return html.unescape(r.text)


async def test_the_worker_trains_a_teach_from_a_web_process_and_the_web_process_goes_live(
    trained_project: Path, tmp_path: Path
) -> None:
    with scratch_schema(PG_URL or "", "retrain") as url:
        env = {"FANLINE_DATABASE_URL": url, "FANLINE_SECRET_KEY": "t",
               "FANLINE_NLU_PIPELINE": PIPELINE, "FANLINE_REPLY_BUDGET_MS": "120000",
               "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
               "TWILIO_NUMBER": OUR_NUMBER, "TWILIO_API_BASE_URL": "http://127.0.0.1:1"}  # fmt: skip
        upgrade = fanline(trained_project, "db", "upgrade", env=env)
        assert upgrade.wait(timeout=120) == 0
        db = Database(url)
        await Auth(db, b"t", hasher=FAST_HASHER).create_agent("root", PASSWORD, role="admin")
        procs: dict[str, subprocess.Popen[str]] = {}
        urls: dict[str, str] = {}
        try:
            for role in ("web", "worker"):
                port = free_port()
                urls[role] = f"http://127.0.0.1:{port}"
                log = tmp_path / f"{role}.log"
                procs[role] = fanline(
                    trained_project, "run", "--role", role, "--no-migrate", "--port", str(port),
                    env={**env, "FANLINE_PUBLIC_URL": urls[role]}, stdout=log.open("w"),
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            for role, proc in procs.items():
                await ready(urls[role], proc, tmp_path / f"{role}.log")
            web = urls["web"]
            fan = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
            assert PARKING_ANSWER not in await text(web, fan, PARKING[0])
            conversation = await db.run(lambda c: c.exec_driver_sql(
                "SELECT id FROM conversations ORDER BY id DESC LIMIT 1").scalar_one())  # fmt: skip

            async with logged_in(web, "root") as (client, csrf):
                before = (await client.get("/api/v1/model")).json()
                r = await client.post("/api/v1/teach", headers={"X-CSRF-Token": csrf}, json={
                    "conversation_id": conversation, "intent": "ask_parking",
                    "response": PARKING_ANSWER, "examples": PARKING})  # fmt: skip
                assert r.status_code == 200, r.text
                assert r.json()["retraining"] is True
                deadline = time.monotonic() + 600  # a bound on training under load
                while not (shown := (await client.get("/api/v1/model")).json())["live"]:
                    assert time.monotonic() < deadline, shown
                    assert (shown["retrain"] or {}).get("status") != "failed", shown
                    await asyncio.sleep(0.5)  # polling what another process does
            assert shown["retrain"]["status"] == "done" and shown["model"] != before["model"]
            row = await db.run(requests.get, shown["retrain"]["id"])
            assert row["holder"].split(":")[1] == str(procs["worker"].pid)  # not the web's CPU
            assert PARKING_ANSWER in await text(web, fan, NEW_PHRASING)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)
            db.close()
