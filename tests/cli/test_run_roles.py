"""`fanline run --role` and `fanline db` as an operator runs them: refusals, upgrade as its own
step, and a worker that drains on SIGTERM (its singleton jobs' leases released)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot import leases, roles
from bot.storage.db import Database, scratch_schema
from tests.cli.test_run import free_port
from tests.conftest import PG_URL, ROOT


def fanline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--project", str(ROOT), *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_web_or_worker_on_sqlite_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = {"FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    for role in ("web", "worker"):
        out = fanline("run", "--role", role, env=env)
        assert out.returncode == 2 and "needs PostgreSQL" in out.stderr
        assert "Traceback" not in out.stderr
    out = fanline("run", env={**env, "FANLINE_ROLE": "cron"})
    assert out.returncode == 2 and "unknown role" in out.stderr


def test_db_current_says_whether_the_schema_is_at_the_code(tmp_path: Path) -> None:
    env = {"FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    before = fanline("db", "current", env=env)
    assert before.returncode == 1 and "schema: empty" in before.stdout
    assert fanline("db", "upgrade", env=env).returncode == 0
    after = fanline("db", "current", env=env)
    assert after.returncode == 0, after.stdout + after.stderr


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set")
def test_a_worker_holds_the_singletons_and_releases_them_on_sigterm(tmp_path: Path) -> None:
    with scratch_schema(PG_URL or "", "role") as url:
        env = {"FANLINE_DATABASE_URL": url, "FANLINE_SECRET_KEY": "t"}
        assert fanline("db", "upgrade", env=env).returncode == 0
        port = free_port()
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "--project", str(ROOT), "-q", "run", "--role",
             "worker", "--no-migrate", "--port", str(port)],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        singles = {name for name, single in roles.jobs_for("worker") if single}
        try:
            body: dict = {}
            deadline = time.monotonic() + 300  # a bound on start-up under load, not a speed claim
            while time.monotonic() < deadline and worker.poll() is None:
                try:
                    body = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
                except httpx.TransportError:
                    body = {}
                if set(body.get("singletons", [])) == singles:
                    break
                time.sleep(0.2)  # polling a starting process
            assert body.get("role") == "worker", (tmp_path / "worker.log").read_text()[-3000:]
            assert set(body["singletons"]) == singles
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=90) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
            log.close()
        db = Database(url)
        try:
            held = db.run_sync(leases.holders)
        finally:
            db.close()
        assert set(held) == singles
        assert all(left <= 0 for _, _, left in held.values()), held  # released, not left to lapse
