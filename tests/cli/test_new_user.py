"""What a new user hit on a fresh clone (issue 17, item 7): slow `--help`, tracebacks from
ordinary commands, a new line that failed its own conversation tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import ROOT

# the demo's own files at its root (not the engine's: bot/, docs/, bench/, tests/ but its
# conversations, the build files)
DEMO_ROOT_FILES = sorted(p.name for p in ROOT.glob("*.yml")) + ["flows", "data", "actions",
                                                                "tests/conversations"]  # fmt: skip

HEAVY = ("sklearn", "scipy", "numpy", "sanic", "sentence_transformers", "torch", "matplotlib")
PARSE = """
import sys
from bot.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("imported:", *(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["agents", "--help"], ["topics", "answers", "list", "--help"], ["teach", "--help"],
     ["broadcast", "create", "--help"], ["fans", "erase"], ["agents", "add"],
     ["report", "--help"]],
)  # fmt: skip
def test_help_and_argument_errors_import_no_model_library(argv: list[str]) -> None:
    # a fresh interpreter: this one has loaded everything already. What is imported, not how long
    # it took: scikit-learn and the web server were 2 s of every `fanline ... --help`
    out = subprocess.run(
        [sys.executable, "-c", PARSE.format(argv=argv, heavy=HEAVY)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.splitlines()[-1] == "imported:"


def test_the_review_statuses_offered_are_the_review_modules() -> None:
    from bot.topics import review, review_cli

    assert review_cli.STATUSES == review.STATUSES


def _fanline(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`fanline ARGV` as a script runs it: no terminal (stdin is /dev/null)."""
    env = {**os.environ, "FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/fans.db"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "--project", str(ROOT), *argv], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "says"),
    [(["agents", "add", "ana"], "--password-stdin"), (["fans", "erase", "+15555550100"], "--yes")],
)
def test_a_question_with_no_terminal_to_ask_is_a_one_line_usage_error(
    tmp_path: Path, argv: list[str], says: str
) -> None:
    done = _fanline(tmp_path, *argv)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: no terminal") and says in done.stderr


def test_run_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = _fanline(tmp_path, "run", "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


def test_a_new_line_passes_its_own_validation_and_conversation_tests(tmp_path: Path) -> None:
    line = tmp_path / "line"
    assert main(["init", str(line)]) == 0
    for name in DEMO_ROOT_FILES:  # everything the demo line has beside the engine
        assert (line / name).exists(), name
    if (ROOT / "models").is_dir():  # the same data and pipeline: the demo's model fits
        shutil.copytree(ROOT / "models", line / "models")
    assert main(["--project", str(line), "validate"]) == 0
    assert main(["--project", str(line), "test"]) == 0


def test_a_broadcast_text_with_an_unknown_placeholder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `fanline validate` refuses {frist_name} in domain.yml; a broadcast took it and sent "Hi !"
    monkeypatch.setenv("FANLINE_DATABASE_URL", f"sqlite:///{tmp_path}/fans.db")
    line = ["--project", str(tmp_path)]
    create = [*line, "broadcast", "create", "tour", "--text"]
    assert main([*create, "Hi {frist_name}!"]) == 2
    err = capsys.readouterr().err
    assert "unknown placeholder {frist_name}: did you mean {first_name}?" in err
    assert main([*line, "broadcast", "list"]) == 0
    assert capsys.readouterr().out == ""  # nothing stored
    assert main([*create, "Hi {first_name|friend}!"]) == 0
