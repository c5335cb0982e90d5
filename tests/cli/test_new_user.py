"""What a new user hit on a fresh clone (issue 17, item 7): slow `--help`, tracebacks from
ordinary commands, a new line that failed its own conversation tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("sklearn", "scipy", "numpy", "sanic", "sentence_transformers", "torch")
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
     ["broadcast", "create", "--help"], ["fans", "erase"], ["agents", "add"]],
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
