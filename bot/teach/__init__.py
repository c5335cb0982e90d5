"""Teaching the bot from the inbox: FAQs made from fans' texts, and agents' labels on bot turns.

Off the message's path. `service` holds the operations (teach, label, suggestions),
`content_writer` the edits of the content files, `teacher` the retraining, `scrub` the
removal of personal details from fans' texts, `cli` the `fanline teach|suggestions` commands.
"""

from __future__ import annotations

import importlib
from typing import Any

# resolved on first use (PEP 562): `fanline teach --help` imports bot.teach.cli, which must not
# pull the NLU and scikit-learn in through this package
_FROM = {"Suggestion": "service", "TaughtFaq": "service", "accept": "service",
         "label_turn": "service", "list_suggestions": "service", "reject": "service",
         "teach": "service", "Teacher": "teacher"}  # fmt: skip
__all__ = sorted(_FROM)


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"bot.teach.{_FROM[name]}"), name)
