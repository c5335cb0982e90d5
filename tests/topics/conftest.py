"""Topic fixtures: waiting texts made through the production store (as tests/inbox does)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.storage import Store
from bot.topics.sweep import TopicSweep
from bot.topics.vectors import NgramVectors
from tests.inbox.conftest import Team, escalate, fan, team  # noqa: F401  (team: fixture)

__all__ = ["QUESTIONS", "Team", "ask_all", "escalate", "fan", "sweep_for"]

# 4 questions the demo cannot answer, 6 phrasings each: the grouping's purity test set
QUESTIONS: dict[str, list[str]] = {
    "denver": [
        "is the denver show still on after the storm?",
        "Denver concert cancelled because of the weather??",
        "hey is denver still happening tonight with this snow",
        "will the denver show go ahead in the blizzard",
        "is the show in Denver cancelled or still on",
        "snow in denver... is tonight's concert still on?",
    ],
    "refund": [
        "how do I get a refund for my tickets",
        "can i get my money back for the tickets I bought",
        "I want a refund on my ticket order",
        "refund please, I can't make it to the show anymore",
        "how do refunds work for tickets",
        "is it possible to get a ticket refund",
    ],
    "parking": [
        "where do we park at the arena",
        "is there parking at the venue",
        "how much is parking at the stadium",
        "any parking near the venue?",
        "where's the best place to park for the concert",
        "does the arena have a parking lot",
    ],
    "vinyl": [
        "when does the vinyl ship",
        "my vinyl preorder hasn't arrived yet",
        "where is my vinyl order",
        "has the vinyl record shipped yet",
        "still waiting on my vinyl, any update on shipping?",
        "when will vinyl preorders be delivered",
    ],
}


def sweep_for(store: Store, **kw: object) -> TopicSweep:
    return TopicSweep(store.db, NgramVectors, **kw)  # type: ignore[arg-type]


async def ask_all(store: Store, start: int = 0) -> dict[int, str]:
    """Every phrasing from its own fan; contact id -> the question's name."""
    asked: dict[int, str] = {}
    n = start
    for name, phrasings in QUESTIONS.items():
        for body in phrasings:
            conversation_id = await escalate(store, fan(n), body)
            asked[conversation_id] = name
            n += 1
    return asked


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 8, 5, hour, minute, tzinfo=UTC)
