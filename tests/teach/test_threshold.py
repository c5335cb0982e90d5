"""The out-of-scope threshold from real traffic: agents' labels move it the way they point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.nlu.config import project_config
from bot.nlu.data import load_training_data
from bot.nlu.interpreter import Interpreter
from bot.nlu.model import latest_model
from bot.nlu.train import TrafficText, build_model
from tests.conftest import ROOT
from tests.teach.conftest import PIPELINE

# the demo's model answers these with some confidence; an agent says a person should have
UNANSWERABLE = ["is there parking near the arena?", "is there a parking garage near the arena",
                "is the denver show still on with all this snow", "parking at the venue?",
                "is the denver show postponed because of the weather", "is there a coat check",
                "how much is parking at the venue", "do they have a coat check at the venue"]  # fmt: skip
# answered right; an agent confirms the intent (they were not trained on)
ANSWERED = [("hoodies still in stock", "ask_merch"), ("whats the code", "check_presale_code"),
            ("is there vinyl", "ask_merch"), ("where she playing", "ask_tour_dates"),
            ("nova touring?", "ask_tour_dates"), ("new music soon?", "ask_album"),
            ("how much r tix", "ask_tickets"), ("presale code pls", "ask_presale")]  # fmt: skip


def test_labelled_fan_texts_move_the_threshold_the_way_they_point(demo_models: Path) -> None:
    cfg = project_config(ROOT / "config.yml", PIPELINE)
    data = load_training_data([ROOT / "data"])
    meta = json.loads((latest_model(demo_models) / "metadata.json").read_text())  # no labels
    alone = meta["calibration"]["threshold"]
    assert meta["threshold_data"]["traffic"] == 0 and meta["threshold_data"]["held_out"] > 700

    # a wave of fans asking the same few things (5 each): 40 labelled hand-overs
    handover = [TrafficText(t, None) for t in UNANSWERABLE] * 5
    raised = build_model(cfg, data, traffic=handover)
    assert raised.calibration.threshold > alone + 0.2  # escalate what looked answerable
    assert raised.metadata["threshold_data"]["traffic"] == 40
    # the probability scale is the held-out folds' alone
    assert raised.calibration.slope == pytest.approx(meta["calibration"]["slope"], rel=1e-3)

    confirmed = handover + [TrafficText(t, intent) for t, intent in ANSWERED] * 5
    lowered = build_model(cfg, data, traffic=confirmed)
    # ... but not so far that the right answers agents confirmed would escalate
    # (never raised by them; equal up to the float noise of two trainings of the same data)
    assert lowered.calibration.threshold <= raised.calibration.threshold + 1e-4
    answers = Interpreter(lowered)
    assert [answers.parse(t).intent for t, _ in ANSWERED] == [i for _, i in ANSWERED]
    print(f"threshold {alone:.3f} alone, {raised.calibration.threshold:.3f} with hand-overs, "
          f"{lowered.calibration.threshold:.3f} with confirmed answers too")  # fmt: skip
