"""Filler words as reactions: read the way fans type them, and what the engine does with them."""

from __future__ import annotations

import pytest
from flow_helpers import Conversation, predict

from bot.flows import FlowStarted
from bot.flows.reactions import canonical, default_reactions

FLOWS = """
flows:
  tour:
    keywords: [TOUR]
    steps:
      - action: utter_tour
"""
DOMAIN_EXTRA = """
  utter_reaction_yes:
    - text: "Not sure what that's a yes to!"
  utter_reaction_yes_broadcast:
    - text: "Thanks for replying!"
"""


@pytest.mark.parametrize(
    ("typed", "word"),
    [("OKKK", "ok"), ("yesss", "yes"), ("hahahaha", "haha"), ("LMAOOO", "lmao"),
     ("hehehe", "hehe"), ("lolll", "lol"), ("nooo", "no")],
)  # fmt: skip
def test_elongated_fillers_read_as_the_listed_word(typed, word):
    assert canonical(typed) == canonical(word)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("ok", "ack"), ("k", "ack"), ("kk", "ack"), ("cool", "ack"), ("got it", "ack"),
     ("lol", "laugh"), ("lmao", "laugh"), ("haha", "laugh"), ("?", "question"),
     ("nvm", "nevermind"), ("thx", "thanks"), ("ty", "thanks"), ("thanks!", "thanks"),
     ("👍", "ack"), ("yes", "yes"), ("no", "no")],
)  # fmt: skip
def test_the_issues_fillers_are_reactions(text, kind):
    reaction = default_reactions().classify(text)
    assert reaction is not None and reaction.kind == kind


def test_affirm_with_nothing_asked_is_the_yes_reaction_not_a_hand_off(make_engine):
    from flow_helpers import DOMAIN

    engine = make_engine(FLOWS, DOMAIN + DOMAIN_EXTRA)
    progress = Conversation(engine).send("Yes I want in", predict("affirm", 0.9))
    started = [c.flow_id for c in progress.commands if isinstance(c, FlowStarted)]
    assert started == ["pattern_reaction"]
    assert progress.says() == ["Not sure what that's a yes to!"]


def test_a_yes_to_a_broadcast_uses_the_broadcast_variant(make_engine):
    from flow_helpers import DOMAIN

    engine = make_engine(FLOWS, DOMAIN + DOMAIN_EXTRA)
    chat = Conversation(engine)
    progress = chat.send("yes!!", event="broadcast_reply", broadcast_text="New album out now!")
    assert progress.says() == ["Thanks for replying!"]
    progress = chat.send("yes!!", event="broadcast_reply", broadcast_text="Text TOUR for dates")
    assert progress.says() == ["Tour dates: example.com/tour"]
