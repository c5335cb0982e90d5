"""`fanline run --port N` as a new team first starts it: no model yet, so it trains, then serves
(and says where)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_trains_a_missing_model_then_serves(tmp_path: Path) -> None:
    project = tmp_path / "line"
    for name in ("flows", "data", "actions", "domain.yml", "config.yml", "endpoints.yml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, project / name)
    port = free_port()
    env = {
        **os.environ,
        "FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/db",
    }
    log = (tmp_path / "server.log").open("w")  # a file, not a pipe nobody drains
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "--project", str(project), "-q", "run", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        ready = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:  # bounded: up to 2 min
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)  # the server is still starting: poll again
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        assert ready is not None and ready.json()["status"] == "ready"
        assert (project / "models").is_dir()
        # the banner names the port it listens on (it used to print the configured 5005)
        assert f"Fanline on http://127.0.0.1:{port} " in (tmp_path / "server.log").read_text()
    finally:
        server.send_signal(signal.SIGTERM)  # what a process manager sends
        assert server.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()[-3000:]
        log.close()
