"""The held-out quality sets (bench/data/heldout/, bench/data/public/) and the benchmarks that read
them: bench/conversations.py --sets, bench/false_triggers.py and bench/reply_storm.py --mix.

Sizes and shares the issue asks of the sets, that they stay apart from the training data, and
that the harnesses count what they claim (a question swallowed by a collect step, a false
STOP). No quality figure of the bot is asserted here: those are printed by the benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import conversation_judge as cj
from bench import conversations as conv
from bench import false_triggers as ft
from bench import storm_mix as sm
from bot.compliance import Decision
from bot.nlu.data import load_training_data

ROOT = Path(__file__).resolve().parents[2]
HELD = ROOT / "bench" / "data" / "heldout"
LANGS = {"en", "es", "fr", "it", "pt"}
UNANSWERABLE = {"escalate", "out_of_scope"}


def test_the_held_out_sets_have_the_sizes_and_mix_the_issue_asks() -> None:
    sets = conv.load_sets(folder=HELD)
    texts = sets["texts"]
    assert len(texts) >= 1000 and len(sets["scenarios"]) >= 100
    assert len(sets["requests"]) >= 300 and len(sets["tricky"]) >= 50
    assert {i.group.split(":")[1] for i in sets["requests"]} == LANGS
    other = Counter(i.label.lang for i in texts if i.label.expect == "other_language")
    assert len(other) >= 5 and min(other.values()) >= 10, other
    cannot = sum(
        i.label.expect in UNANSWERABLE
        or (i.label.expect == "other_language" and "escalate" in i.label.also)
        for i in texts
    )
    assert 0.35 <= cannot / len(texts) <= 0.45, cannot / len(texts)
    assert {i.label.expect for i in texts} >= cj.SINGLE_CLASSES


def test_held_out_texts_are_not_trained_on() -> None:
    """Common short questions ("when is the tour") are also training examples, by nature (the
    benchmark's `unseen` rows leave them out); a held-out set copied into data/ is not."""
    trained = {conv._norm(e.text) for e in load_training_data([ROOT / "data"]).examples}
    sets = conv.load_sets(folder=HELD)
    held = [i.text for k in ("texts", "requests", "tricky") for i in sets[k]]
    held += [t.text for sc in sets["scenarios"] for t in sc.turns]
    held += [p.text for p in sm.load_mix(HELD / "reply_storm_album.yml").phrases()]
    copied = [t for t in held if len(t.split()) >= 3 and conv._norm(t) in trained]
    assert len(copied) < 0.15 * len(held), f"held-out texts in data/*.yml: {len(copied)}"


def test_the_album_storm_is_a_different_broadcast_with_its_own_topics() -> None:
    album, dev = sm.load_mix(HELD / "reply_storm_album.yml"), sm.load_mix()
    assert album.broadcast != dev.broadcast and not album.topic_names & dev.topic_names
    for topic in album.topics:
        wave1 = {conv._norm(p.text) for p in topic.wave1}
        assert not wave1 & {conv._norm(p.text) for p in topic.held_out}, topic.name


def test_a_question_taken_as_the_waiting_slot_is_counted_as_swallowed() -> None:
    asked, answer = cj.Expect("vip"), cj.Expect("any")
    taken = cj.Observed(slots_taken=("first_name",))
    assert cj.swallowed(asked, taken) and cj.swallowed(cj.Expect("escalate"), taken)
    assert not cj.swallowed(answer, taken)  # "Maya" to "what's your first name?" is the answer
    assert not cj.swallowed(asked, cj.Observed())


async def test_the_harness_sees_which_slot_a_waiting_flow_took(database_url: str) -> None:
    from bot.runtime import Runtime
    from bot.settings import load_settings

    env = {"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    runtime = await Runtime.start(load_settings(ROOT, env=env))
    try:
        phone = await conv.fan(runtime, {})
        started = await conv.send(runtime, phone, "BDAY")
        named = await conv.send(runtime, phone, "Maya")
    finally:
        await runtime.close()
    assert started.slots_taken == ()  # the flow started this turn: nothing was waiting
    assert named.slots_taken == ("first_name",)


def test_false_triggers_counts_each_kind_of_decision() -> None:
    assert ft.kind_of(Decision("opt_out", "STOP")) == "sure"
    assert ft.kind_of(Decision("confirm_opt_out", "model", score=0.5)) == "asked"
    assert ft.kind_of(Decision("help", "model", score=0.9)) == "help_model"
    assert ft.kind_of(Decision("opt_in", "model", score=0.9)) == "start_model"
    assert ft.kind_of(Decision("help", "HELP")) is None  # the carriers' keyword, not a guess
    corpus = ft.Corpus("t", "held-out", ["please stop texting me", "stop", "what time is it"])
    assert ft.measure(corpus, None) == 2  # a bare carrier keyword is an opt-out: left out
    assert [text for _, _, text in corpus.hits["sure"]] == ["please stop texting me"]


def test_false_triggers_reads_the_public_corpora_as_held_out() -> None:
    found = {c.name: c for c in ft.public_corpora()}
    assert {"banking77_test", "sebischair_nlu"} <= set(found)
    assert len(found["banking77_test"].texts) > 3000
    assert all(c.split == "held-out" and not any(t.startswith("#") for t in c.texts)
               for c in found.values())  # fmt: skip
    demo = ft.rasa_corpus(ROOT, "demo", "dev")
    assert demo is not None and len(demo.texts) > 100


def test_the_conversation_benchmark_reports_dev_and_held_out_apart(tmp_path: Path) -> None:
    args = ["--pipelines", "accurate", "--fans", "subscribed", "--limit", "3",
            "--sets", "both", "--out", str(tmp_path / "out.json")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "conversations.py"), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "DEV sets" in out and "HELD-OUT sets" in out, out[-2000:]
    assert out.count("questions swallowed by a collect step") == 2
    assert out.count("scenario turns right ") >= 2


def test_a_reply_storm_runs_on_the_album_mix_given_with_mix() -> None:
    args = ["--fans", "300", "--reply-share", "0.2", "--pipeline", "default",
            "--group-texts", "300", "--max-actions", "4", "--agent-start", "120",
            "--mix", str(HELD / "reply_storm_album.yml")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reply_storm.py"), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        line.split()[0]
        for line in done.stdout.splitlines()
        if line.startswith("  ") and line.split()
    }
    assert "tracklist" in rows and "still_on" not in rows, done.stdout[-3000:]
