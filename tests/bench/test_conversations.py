"""The conversation-quality benchmark (bench/conversations.py): it runs, and it tells right from wrong.

A sanity check on a small slice of the held-out sets through the real pipeline and on the pure
verdicts; the benchmark's figures are reported by `python bench/conversations.py`, never
asserted here (the aims are for the bot, not for this test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench import conversation_judge as cj
from bench import conversations as bench
from bot.errors import ConfigError
from bot.runtime import Runtime
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
LANGS = ["en", "es", "it", "fr", "pt"]


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    env = {"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    rt = await Runtime.start(load_settings(ROOT, env=env))
    try:
        yield rt
    finally:
        await rt.close()


def item(text: str, expect: str, **kw: object) -> cj.Item:
    return cj.Item(text, cj.Expect(expect, **kw), "test", "test")  # type: ignore[arg-type]


def test_the_held_out_sets_load_with_the_sizes_the_issue_asks() -> None:
    sets = bench.load_sets()
    assert len(sets["texts"]) >= 300 and len(sets["scenarios"]) >= 40
    assert len(sets["requests"]) >= 150 and len(sets["tricky"]) >= 60
    assert {i.group for i in sets["requests"]} >= {f"opt_out:{x}" for x in LANGS}
    refund = {"refund"}  # refunds are labelled `escalate`: they must reach a person
    assert {i.label.expect for i in sets["texts"]} >= cj.SINGLE_CLASSES - refund


def test_a_bad_label_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "texts.yml"
    bad.write_text('texts:\n  - {text: "hi", expect: greet}\n  - {text: "yo", expect: greeet}\n')
    with pytest.raises(ConfigError) as err:
        cj.load_texts(bad)
    assert "texts.yml:3" in str(err.value) and "greeet" in str(err.value)


async def test_the_real_pipeline_is_judged_right_and_wrong(runtime: Runtime) -> None:
    good = [item("STOP", "opt_out"), item("TOUR", "tour_dates"),
            item("I want to talk to a person", "escalate")]  # fmt: skip
    bad = [
        item("TOUR", "merch"),
        item("STOP", "not_opt_out"),
        item("MERCH", "escalate", also=("merch",)),
    ]
    results = await bench.run_texts(runtime, good + bad, "subscribed")
    verdicts = [v for _, _, v in results]
    assert [v.ok for v in verdicts] == [True] * 3 + [False] * 3, [v.why for v in verdicts]
    assert [v.why for v in verdicts[3:]] == ["wrong_answer", "false_opt_out", "missed_escalation"]
    figures = cj.summarise(results, [], [])
    assert figures["escalation_recall"] == 50.0 and figures["wrong_answers"] == pytest.approx(16.7)


async def test_a_scenario_follows_one_fan_through_stop_and_start(runtime: Runtime) -> None:
    turns = (item("STOP", "opt_out"), item("hello", "ignored"), item("START", "resubscribe"))
    sc = cj.Scenario("stop_start", {}, turns, None, "test")
    done = await bench.run_scenario(runtime, sc)
    assert done["ok"], done["failed_turns"]
    wrong = cj.Scenario("wrong", {}, (item("STOP", "opt_out"), item("hello", "any")), None, "t")
    assert (await bench.run_scenario(runtime, wrong))["failed_turns"][0]["verdict"] == "no_reply"


def test_silence_is_a_dead_end_except_where_nothing_is_a_right_answer() -> None:
    silent = cj.Observed(subscription="subscribed", was="subscribed")
    assert cj.judge(cj.Expect("tour_dates"), silent).dead_end
    assert cj.judge(cj.Expect("filler"), silent).ok
    held = cj.Observed(held=True, status="open", subscription="subscribed", was="subscribed")
    assert cj.judge(cj.Expect("escalate"), held).ok  # a person has the thread
    assert not cj.judge(cj.Expect("tour_dates"), held).dead_end


def test_other_languages_and_reactions() -> None:
    english_oos = cj.Observed(responses=("utter_out_of_scope",), replies=("That's outside",),
                              escalated=True)  # fmt: skip
    label = cj.Expect("other_language", lang="es")
    assert cj.judge(label, english_oos).why == "english_cant_help"
    spanish = cj.Observed(
        replies=("Hola, por ahora solo hablo inglés, pero una persona del equipo te escribe.",)
    )
    assert cj.judge(label, spanish).ok
    love = cj.Observed(responses=("utter_love_you",), flows=("love_you",), replies=("Aww",))
    assert cj.judge(cj.Expect("reaction"), love).wrong  # "💀💀" is not a declaration of love
    assert cj.judge(cj.Expect("reaction", also=("love_you",)), love).ok
