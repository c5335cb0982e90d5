"""A training child that never trains: it reads its job, records its pid, then waits for its
parent to go away exactly as `bot.teach.retrain` does (`_exit_with_parent`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.teach.retrain import _exit_with_parent  # noqa: E402

if __name__ == "__main__":
    json.loads(sys.stdin.readline())
    tmp = Path(sys.argv[1] + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.rename(sys.argv[1])  # whole or not at all
    _exit_with_parent()
