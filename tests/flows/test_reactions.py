"""Reactions: emoji/symbol/filler-only texts, the map as data, and pattern_reaction in the engine."""

from __future__ import annotations

import pytest
from flow_helpers import Conversation, predict, write
from test_engine import BIRTHDAY, commands_of

from bot.errors import ConfigError
from bot.flows import FlowStarted, HandOff
from bot.flows.reactions import Reaction, default_reactions, load_reactions


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("🤡🤡", "unknown"),
        ("👍", "ack"),
        ("👍🏽", "ack"),  # a skin tone is the same reaction
        ("💀💀", "laugh"),
        ("😂🤣", "laugh"),
        ("❤️", "love"),
        ("❤️‍🔥", "love"),  # a ZWJ sequence reads as its first symbol
        ("😍 🥰", "love"),
        ("<3", "love"),
        ("😢😭", "sad"),
        ("👌", "ack"),
        ("🦄", "unknown"),
        ("!!!", "unknown"),
        ("?", "question"),
        ("😂😂😂 ❤️", "laugh"),  # the kind most of the symbols are
    ],
)
def test_symbol_only_texts_are_reactions(text, kind):
    assert default_reactions().classify(text).kind == kind


@pytest.mark.parametrize(
    "text", ["", "   ", "tour?", "love you ❤️", "when is the tour 😂", "ok tour"]
)
def test_texts_with_words_are_not_reactions(text):
    assert default_reactions().classify(text) is None


def test_thumbs_up_is_silent_by_default_and_unknown_gets_a_light_reply():
    table = default_reactions()
    assert table.classify("👍") == Reaction("ack", None)
    assert table.classify("🤡") == Reaction("unknown", "utter_reaction_unknown")


def test_a_project_file_overrides_kinds_and_adds_words(tmp_path):
    path = write(
        tmp_path,
        "reactions.yml",
        """
        reactions:
          ack:
            reply: utter_thumbs
            emoji: ["👍"]
            words: [ok, k, kk]
          clown:
            reply: null
            emoji: ["🤡"]
        """,
    )
    table = load_reactions(path)
    assert table.classify("👍") == Reaction("ack", "utter_thumbs")
    assert table.classify("OK") == Reaction("ack", "utter_thumbs")
    assert table.classify("k 👍") == Reaction("ack", "utter_thumbs")
    assert table.classify("🤡🤡") == Reaction("clown", None)
    assert table.classify("😂").kind == "laugh"  # the package's other kinds stay
    assert table.classify("👌") == Reaction("ack", "utter_thumbs")  # the package's symbols stay


def test_a_project_kind_without_reply_keeps_the_packages_reply(tmp_path):
    path = write(tmp_path, "reactions.yml", "reactions:\n  love:\n    emoji: ['🐐']\n")
    assert load_reactions(path).classify("🐐") == Reaction("love", "utter_reaction_love")
    moved = write(tmp_path, "moved.yml", "reactions:\n  sad:\n    emoji: ['💀']\n")
    assert (
        load_reactions(moved).classify("💀").kind == "sad"
    )  # a symbol moves to the project's kind


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("reactions: [1, 2]", "expected `reactions:`"),
        ("reactions:\n  love: {reply: hello}", "`reply` must be a response name"),
        ("reactions:\n  love: {emoji: 3}", "`emoji` must be a list"),
        ("reactions:\n  love: {emojis: []}", "unknown key 'emojis'"),
    ],
)
def test_a_broken_project_file_names_file_and_line(tmp_path, body, message):
    path = write(tmp_path, "reactions.yml", body)
    with pytest.raises(ConfigError, match=message) as caught:
        load_reactions(path)
    assert str(path) in str(caught.value)


def test_emoji_only_text_gets_a_light_reply_not_the_nlu_guess(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    # the NLU's (meaningless) confident guess for an emoji is ignored
    progress = chat.send("😂😂", predict("ask_tour", 0.99))
    assert progress.says() == ["😂"]
    assert commands_of(progress, FlowStarted) == [FlowStarted("pattern_reaction", "reaction:laugh")]
    assert not commands_of(progress, HandOff)
    assert chat.state.stack == ()


@pytest.mark.parametrize("text", ["🤡🤡", "💀", "❤️", "😭", "🦄🦄", "👍", "..."])
def test_no_reaction_ever_escalates(make_engine, text):
    progress = Conversation(make_engine(BIRTHDAY)).send(text, predict(None, 0.0))
    assert not commands_of(progress, HandOff)
    assert len(progress.says()) <= 1


def test_thumbs_up_says_nothing(make_engine):
    assert Conversation(make_engine(BIRTHDAY)).send("👍", predict("love_you", 0.99)).says() == []


def test_a_reaction_at_a_question_asks_it_again_without_a_retry(make_engine):
    chat = Conversation(make_engine(BIRTHDAY))
    chat.send("bday")
    for _ in range(3):  # max_retries is 1: reactions never use it up
        assert chat.send("😂").says() == ["When is your birthday?"]
    assert chat.send("Jan 2 1990").says() == ["What's your ZIP code?"]


def test_a_reaction_never_fills_a_free_text_slot(make_engine):
    engine = make_engine(
        """
        flows:
          intro:
            keywords: [HI]
            steps:
              - collect: name
              - action: utter_welcome
        """
    )
    chat = Conversation(engine)
    chat.send("hi")
    assert chat.send("😂").says() == ["What's your name?"]


def test_a_photo_with_an_emoji_is_not_a_reaction(make_engine):
    progress = Conversation(make_engine(BIRTHDAY)).send("😍", predict(None, 0.0), num_media=1)
    assert commands_of(progress, FlowStarted)[0].flow_id == "pattern_cannot_handle"


def test_a_project_can_override_the_pattern(make_engine):
    engine = make_engine(
        BIRTHDAY
        + """
  pattern_reaction:
    steps:
      - noop: true
        next:
          - if: "message.reaction == 'laugh'"
            then: tour
          - else: END
      - id: tour
        action: utter_tour
"""
    )
    assert Conversation(engine).send("💀").says() == ["Tour dates: example.com/tour"]
    assert Conversation(engine).send("❤️").says() == []


def test_a_reply_no_response_defines_is_a_warning(tmp_path):
    table = load_reactions(
        write(tmp_path, "reactions.yml", "reactions:\n  sad: {reply: utter_x}\n")
    )
    warnings = table.missing_replies({"utter_reaction_love", "utter_reaction_laugh"})
    assert any("'sad'" in str(w) and "utter_x" in str(w) and w.warning for w in warnings)
