"""Teaching the bot from the inbox: FAQs made from fans' texts, and agents' labels on bot turns.

Off the message's path. `service` holds the operations (teach, label, suggestions),
`content_writer` the edits of the content files, `teacher` the retraining, `scrub` the
removal of personal details from fans' texts, `cli` the `fanline teach|suggestions` commands.
"""

from bot.teach.service import (
    Suggestion,
    TaughtFaq,
    accept,
    label_turn,
    list_suggestions,
    reject,
    teach,
)
from bot.teach.teacher import Teacher

__all__ = ["Suggestion", "TaughtFaq", "Teacher", "accept", "label_turn", "list_suggestions",
           "reject", "teach"]  # fmt: skip
