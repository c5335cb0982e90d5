"""Close calls: "Did you mean 1) ... or 2) ...?" instead of a guess, and reading the answer."""

from __future__ import annotations

import pytest
from flow_helpers import DOMAIN, Conversation
from test_engine import commands_of

from bot.flows import FlowEnded, FlowStarted, HandOff
from bot.flows.disambiguation import Disambiguation, chosen, close_call, humanise
from bot.messages import Prediction

FLOWS = """
flows:
  tour:
    label: tour dates
    nlu_trigger: [ask_tour]
    steps:
      - action: utter_tour
  setlist:
    label: the setlist
    nlu_trigger: [ask_setlist]
    steps:
      - action: utter_setlist
  greet:
    nlu_trigger: [greet]
    steps:
      - action: utter_hi
"""
RESPONSES = (
    DOMAIN
    + """
  utter_setlist:
    - text: "No spoilers!"
  utter_hi:
    - text: "Hi!"
"""
)
QUESTION = "Did you mean 1) tour dates or 2) the setlist? Reply 1 or 2."


def ranked(*pairs: tuple[str, float], intent: str | None = None) -> Prediction:
    best = pairs[0][0]
    name = intent or best.split("/")[0]
    retrieval = best if "/" in best and name != "out_of_scope" else None
    return Prediction(
        text="",
        intent=name,
        confidence=pairs[0][1],
        ranking=tuple(pairs),
        retrieval_intent=retrieval,
    )


CLOSE = ranked(("ask_tour", 0.62), ("ask_setlist", 0.58), ("greet", 0.1))


@pytest.fixture
def engine(make_engine):
    return make_engine(FLOWS, RESPONSES, default_threshold=0.4)


def test_close_intents_get_a_one_tap_question(engine):
    chat = Conversation(engine)
    progress = chat.send("what songs on the tour", CLOSE)
    assert progress.says() == [QUESTION]
    assert FlowStarted("pattern_disambiguate", "pattern") in progress.commands
    assert not commands_of(progress, HandOff)


@pytest.mark.parametrize(
    "answer", ["2", "2)", "the second one", "second", "#2", "setlist", "i meant the setlist"]
)
def test_the_answer_picks_the_option(engine, answer):
    chat = Conversation(engine)
    chat.send("what songs on the tour", CLOSE)
    progress = chat.send(answer, Prediction(text=answer, intent=None, confidence=0.0))
    assert progress.says() == ["No spoilers!"]
    assert FlowEnded("pattern_disambiguate", "answered") in progress.commands
    assert chat.state.stack == ()
    assert not any(k.startswith("disambiguation") for k in chat.state.slots)


def test_the_first_option_and_the_nlu_reading_of_the_answer(engine):
    chat = Conversation(engine)
    chat.send("what songs on the tour", CLOSE)
    assert chat.send("1").says() == ["Tour dates: example.com/tour"]
    chat.send("what songs on the tour", CLOSE)
    dates = ranked(("ask_tour", 0.9), ("ask_setlist", 0.1))
    assert chat.send("when are the dates", dates).says() == ["Tour dates: example.com/tour"]


def test_anything_else_is_a_new_turn(engine):
    chat = Conversation(engine)
    chat.send("what songs on the tour", CLOSE)
    progress = chat.send("hello there", ranked(("greet", 0.95), ("ask_tour", 0.05)))
    assert progress.says() == ["Hi!"]
    assert FlowEnded("pattern_disambiguate", "abandoned") in progress.commands
    assert chat.state.stack == ()


def test_a_clear_winner_is_answered(engine):
    clear = ranked(("ask_tour", 0.9), ("ask_setlist", 0.2))
    assert Conversation(engine).send("tour dates", clear).says() == ["Tour dates: example.com/tour"]


def test_the_grey_zone_above_the_threshold_asks(engine):
    barely = ranked(("ask_tour", 0.45), ("ask_setlist", 0.32))  # threshold 0.4, margin 0.13
    assert Conversation(engine).send("tour songs?", barely).says() == [QUESTION]
    alone = ranked(("ask_tour", 0.45), ("ask_setlist", 0.05))  # the second is no reading
    assert Conversation(engine).send("tour?", alone).says() == ["Tour dates: example.com/tour"]


def test_margins_come_from_settings_and_can_be_turned_off(make_engine):
    never = make_engine(FLOWS, RESPONSES, disambiguation=Disambiguation(enabled=False))
    assert Conversation(never).send("x", CLOSE).says() == ["Tour dates: example.com/tour"]
    tight = make_engine(FLOWS, RESPONSES, default_threshold=0.3,
                        disambiguation=Disambiguation(margin=0.02, grey_zone=0.0))  # fmt: skip
    assert Conversation(tight).send("x", CLOSE).says() == ["Tour dates: example.com/tour"]


def test_only_labelled_flows_and_retrieval_answers_are_options(engine):
    # greet has no label: offered never, so a close greet/tour call is answered as usual
    close = ranked(("ask_tour", 0.6), ("greet", 0.58))
    assert Conversation(engine).send("hey tour", close).says() == ["Tour dates: example.com/tour"]
    # nor is a labelled third option when the real runner-up cannot be offered
    third = ranked(("ask_tour", 0.6), ("greet", 0.59), ("ask_setlist", 0.58))
    assert Conversation(engine).send("hey tour", third).says() == ["Tour dates: example.com/tour"]
    faq = ranked(("ask_tour", 0.6), ("faq/ask_merch", 0.58))
    assert Conversation(engine).send("tour merch", faq).says() == [
        "Did you mean 1) tour dates or 2) merch? Reply 1 or 2."
    ]


def test_out_of_scope_is_never_disambiguated(engine):
    oos = ranked(("ask_tour", 0.3), ("ask_setlist", 0.29), intent="out_of_scope")
    progress = Conversation(engine).send("weather?", oos)
    assert commands_of(progress, FlowStarted)[0].flow_id == "pattern_cannot_handle"


def test_pure_helpers():
    assert humanise("faq/ask_tour_dates") == "tour dates"
    assert humanise("check_presale_code") == "presale code"
    assert chosen("ok 1", ["a", "b"], ["x", "y"], None) == 0
    assert chosen("both", ["a", "b"], ["tour dates", "the setlist"], None) is None
    assert chosen("what are the dates", ["a", "b"], ["tour dates", "the setlist"], None) == 0
    target = {"ask_tour": "tour", "ask_setlist": "setlist"}.get
    assert close_call(CLOSE, 0.4, Disambiguation(), target) == ["ask_tour", "ask_setlist"]
    assert close_call(None, 0.4, Disambiguation(), target) is None


def test_judge_says_which_readings_are_sure_single_answers(make_engine):
    engine = make_engine(
        FLOWS
        + """
  complaint:
    nlu_trigger: [complaint]
    steps:
      - action: utter_hi
      - escalate:
          reason: complaint
  profile:
    label: your profile
    nlu_trigger: [update_profile]
    steps:
      - collect: birthday
""",
        RESPONSES,
        default_threshold=0.4,
    )
    assert engine.judge(ranked(("ask_tour", 0.9), ("ask_setlist", 0.1))) == ("tour", False)
    assert engine.judge(ranked(("faq/ask_merch", 0.9), ("ask_tour", 0.1))) == (
        "utter_faq/ask_merch",
        False,
    )
    assert engine.judge(CLOSE) == (None, False)  # a close call is not sure
    assert engine.judge(ranked(("ask_tour", 0.45), ("greet", 0.05))) == (None, False)  # grey zone
    assert engine.judge(ranked(("update_profile", 0.9), ("greet", 0.1))) == (None, False)  # asks
    assert engine.judge(ranked(("complaint", 0.9), ("greet", 0.1))) == (None, True)
    assert engine.judge(None) == (None, False)


def test_config_yml_sets_the_margins_and_bad_values_name_file_and_line(tmp_path):
    from bot.errors import ConfigError
    from bot.settings import load_settings

    (tmp_path / "config.yml").write_text(
        "fanline:\n  disambiguation:\n    margin: 0.8\n    grey_zone: 0.05\n"
    )
    assert load_settings(tmp_path, env={}).disambiguation == Disambiguation(0.8, 0.05)
    (tmp_path / "config.yml").write_text("fanline:\n  disambiguation:\n    grey_zone: 2\n")
    with pytest.raises(ConfigError, match=r"config.yml:3.*grey_zone.*\[0, 1\]"):
        load_settings(tmp_path, env={})
    (tmp_path / "config.yml").write_text("fanline:\n  disambiguation:\n    margins: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'margins'"):
        load_settings(tmp_path, env={})
