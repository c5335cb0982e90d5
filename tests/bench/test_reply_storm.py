"""The reply-storm benchmark (bench/reply_storm.py): it runs end to end and prints every figure.

A tiny storm through the real app, pipeline, sweep and inbox, with no thresholds on the
quality figures (those are for the bot, reported by `python bench/reply_storm.py`); a crash or
a missing figure line fails. Beside it, the mix's own promises and the simulated outbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import reply_storm as bench
from bench import storm_mix as sm
from bench.conversations import _norm
from bot.nlu.data import load_training_data
from tests.conftest import BACKENDS, PG_URL

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
    "fans who replied", "answered by the bot: right / wrong", "opt-outs honoured",
    "topics formed", "purity (majority category's share, by size)", "agent actions",
    "fans with a right answer (bot or agent)", "of them from corrections of bot answers",
    "fans with a right answer within 1 hour",
    "taught-topic texts answered by the bot", "taught-topic texts answered wrong",
    "from stored vectors", "with encoding",
]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tiny_storm_runs_through_and_prints_every_figure(backend: str) -> None:
    args = ["--fans", "300", "--reply-share", "0.2", "--pipeline", "default",
            "--group-texts", "300", "--max-actions", "8", "--agent-start", "120"]  # fmt: skip
    if backend == "postgresql":
        args += ["--database-url", PG_URL or ""]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reply_storm.py"), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    missing = [f for f in FIGURES if f not in done.stdout]
    assert not missing, (missing, done.stdout[-3000:])
    assert "fans who replied" in done.stdout and " 60\n" in done.stdout  # 20 % of 300


def test_the_mix_keeps_its_promises() -> None:
    mix = sm.load_mix()
    assert len(mix.topics) >= 5
    for topic in mix.topics:
        phrasings = [p.text for p in (*topic.wave1, *topic.held_out)]
        assert len(phrasings) >= 25 and len(set(phrasings)) == len(phrasings), topic.name
        assert not {_norm(p.text) for p in topic.wave1} & {_norm(p.text) for p in topic.held_out}
        assert topic.answer and topic.intent
    trained = {_norm(e.text) for e in load_training_data([ROOT / "data"]).examples}
    copied = [
        p.text for p in mix.phrases() if len(p.text.split()) >= 3 and _norm(p.text) in trained
    ]
    assert not copied, f"the mix must be written apart from data/nlu.yml: {copied}"


def test_the_second_wave_only_sends_held_out_phrasings() -> None:
    import random

    mix = sm.load_mix()
    held = {_norm(p.text) for t in mix.topics for p in t.held_out}
    drawn = sm.draw(mix, random.Random(3), 2000, wave=2)
    assert all(p.held_out for p in drawn if p.kind == "topics")
    assert {p.kind for p in drawn} == set(sm.KINDS) and held


def test_the_outbox_sends_in_queue_order_at_its_rate() -> None:
    # three broadcast texts queued at 0, an agent reply queued at 0.05 s: it waits its turn
    sent = bench.outbox_times([(1, 0.0), (2, 0.0), (3, 0.0), (9, 0.05), (4, 5.0)], rate=10.0)
    assert sent == {1: 0.0, 2: 0.1, 3: 0.2, 9: pytest.approx(0.3), 4: 5.0}


def test_purity_is_the_majority_share_weighted_by_size() -> None:
    assert bench.purity({1: ["a", "a", "b"], 2: ["c"]}) == 75.0
    assert bench.purity({}) == 0.0
