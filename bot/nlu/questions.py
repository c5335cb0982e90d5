"""Several questions in one text: split it into clauses, and decide which of them to answer.

Between steps 5 and 7 of the message path (`Pipeline._converse`): "when is the presale and how
much are tickets" is two questions; "omg the show was amazing. my friend cried. when is the
next tour?" is a long text whose question is its last sentence. `split_questions` cuts a text
at sentence ends, line breaks and "and/also/plus/&" before a new question; `pick_questions`
takes the NLU reading of the whole text and of each clause and says which clauses to answer
(up to three), or none (then the whole text is one turn, as before). `pack_replies` joins the
answers into as few texts as the segment budget allows. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.messages import Prediction
from bot.sms import count_segments

MAX_QUESTIONS = 3
MAX_CLAUSES = 8  # a longer text is a letter, not a list of questions: read it whole
# words a question (or a request) starts with, after a conjunction
_OPENERS = (
    "when|where|what|whats|what's|which|who|whos|who's|how|why|is|are|was|will|would|can|could|"
    "do|does|did|any|anything|should|has|have|r|u|wen|wat|wht|hw|wher|whens|when's|where's|"
    "tell|give|send|pls|please|also"
)
_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+|(?<=\?)(?=\S)")
_JOINER = re.compile(
    rf"\s*(?:,\s*)?\b(?:and(?:\s+also)?|also|plus|&|n)\s+(?=(?:{_OPENERS})\b)", re.IGNORECASE
)
_QUESTION_START = re.compile(rf"^(?:{_OPENERS})\b", re.IGNORECASE)


def split_questions(text: str) -> list[str]:
    """Clauses of a text, in order: sentences, then "X and <question>" inside each."""
    clauses: list[str] = []
    lead = ""  # a one-word opening ("hi!") joins the clause after it
    for sentence in _SENTENCES.split(text.strip()):
        for part in _JOINER.split(sentence):
            part = part.strip(" ,;")
            if not part:
                continue
            if _words(part) >= 2 or part.endswith("?"):
                clauses.append(f"{lead} {part}".strip())
                lead = ""
            elif clauses:  # a one-word tail ("thx") stays with the clause before
                clauses[-1] = f"{clauses[-1]} {part}"
            else:
                lead = f"{lead} {part}".strip()
    if lead:
        clauses.append(lead)
    return clauses


def is_question(clause: str) -> bool:
    return clause.rstrip().endswith("?") or bool(_QUESTION_START.match(clause.strip()))


@dataclass(frozen=True, slots=True)
class Reading:
    """The NLU's reading of one clause (or of the whole text) and what it would start."""

    text: str
    prediction: Prediction
    answer: str | None  # a sure, single-step answer: its flow id or response; else None
    hands_off: bool = False  # confidently something a person must see (a complaint, a refund)


def pick_questions(whole: Reading, clauses: Sequence[Reading]) -> list[Reading]:
    """The clauses to answer one after the other, or [] to answer the whole text as one turn.

    Two or more clauses that are each surely a different single-step answer are all answered
    (up to three). One such clause in a longer text is the question that text asks, unless the
    whole text already reads as that answer. Nothing is split when any part, or the whole, is
    something a person must see: the hand-off sees the text whole.
    """
    if len(clauses) < 2 or len(clauses) > MAX_CLAUSES:
        return []
    if whole.hands_off or any(c.hands_off for c in clauses):
        return []
    sure: list[Reading] = []
    for clause in clauses:
        if clause.answer is not None and clause.answer not in {s.answer for s in sure}:
            sure.append(clause)
    if len(sure) >= 2:
        return sure[:MAX_QUESTIONS]
    if len(sure) == 1 and sure[0].answer != whole.answer and is_question(sure[0].text):
        return sure
    return []


def pack_replies(texts: Sequence[str], max_segments: int) -> list[str]:
    """Consecutive replies joined (a blank line between) while the text fits the budget."""
    packed: list[str] = []
    for text in texts:
        if packed and count_segments(f"{packed[-1]}\n\n{text}").count <= max_segments:
            packed[-1] = f"{packed[-1]}\n\n{text}"
        else:
            packed.append(text)
    return packed


def _words(text: str) -> int:
    return len(re.findall(r"[\w']+", text))
