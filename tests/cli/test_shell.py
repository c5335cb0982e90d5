"""`fanline shell` in a real process: a fan's conversation typed at the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_a_conversation_in_the_shell(tmp_path: Path) -> None:
    env = {**os.environ, "FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/shell.db"}
    typed = "hi\nyes\nTOUR\nSTOP\nhello?\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--project", str(ROOT), "-q", "shell", "--debug"],
        input=typed, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    bot_lines = [line for line in out.splitlines() if "bot> " in line]
    assert (
        len(bot_lines) == 4
    )  # opt-in question, welcome, tour dates, STOP confirmation; then silence
    assert "reply YES" in bot_lines[0] and "/join/" in bot_lines[0]
    assert "unsubscribed" in bot_lines[3].lower()
    assert "intent=" in out and "flow_started" in out  # --debug explains each turn
    assert "Traceback" not in done.stderr
