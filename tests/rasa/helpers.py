"""Small Rasa-style projects written into a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

FLOW = """\
flows:
  greet:
    description: say hello
    nlu_trigger: [greet]
    steps:
      - action: utter_greet
"""
DOMAIN = """\
version: "3.1"
responses:
  utter_greet:
    - text: Hello!
"""
NLU = """\
version: "3.1"
nlu:
  - intent: greet
    examples: |
      - hi
      - hello
      - hey there
      - good morning
  - intent: goodbye
    examples: |
      - bye
      - see you
      - good night
      - goodbye
"""


def project(root: Path, files: dict[str, str], *, base: bool = True) -> Path:
    """Write `files` (path -> text, dedented) under root; `base` adds a flow, domain and NLU."""
    every = {"flows/greet.yml": FLOW, "domain.yml": DOMAIN, "data/nlu.yml": NLU} if base else {}
    for name, text in {**every, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root
