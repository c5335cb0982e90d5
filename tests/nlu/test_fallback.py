"""bot.nlu.fallback: calibration, threshold choice and AUROC (pure numpy)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from bot.nlu.fallback import auroc, choose_threshold, fit_calibration


def test_threshold_maximises_right_decisions():
    conf = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    correct = np.array([False, False, False, True, False, True, True])
    is_oos = np.array([True, True, False, False, False, False, False])
    t = choose_threshold(conf, correct, is_oos)
    # escalating below 0.3..0.6 catches both oos texts and the wrong in-scope one, keeps 3 right
    assert 0.3 < t <= 0.6
    escalated = conf < t
    assert (escalated[is_oos]).all() and not escalated[correct].any()


def test_threshold_without_oos_examples_keeps_most_right_answers():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 1000)
    correct = np.ones(1000, bool)
    t = choose_threshold(conf, correct, np.zeros(1000, bool))
    assert abs((conf >= t).mean() - 0.95) < 0.01


def test_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(1, 1, 300), 1)
    b = np.round(rng.normal(0, 1, 100), 1)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(100)], np.r_[a, b])
    assert abs(auroc(a, b) - expected) < 1e-12


def test_calibration_is_monotone_and_separates():
    rng = np.random.default_rng(2)
    raw = np.r_[rng.normal(2, 0.5, 200), rng.normal(0, 0.5, 200)]
    correct = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    is_oos = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    cal = fit_calibration(raw, correct, is_oos)
    probs = cal.probability(np.sort(raw))
    assert (np.diff(probs) >= 0).all()
    assert cal.probability(2.0) > 0.9 and cal.probability(0.0) < 0.1
    assert 0.1 < cal.threshold < 0.9


def test_weighted_out_of_scope_texts_raise_the_threshold():
    # 10 right answers spread over 0.3..0.75, 2 out-of-scope texts at 0.5 and 0.7
    conf = np.r_[np.linspace(0.3, 0.75, 10), [0.5, 0.7]]
    correct = np.r_[np.ones(10, bool), [False, False]]
    is_oos = np.r_[np.zeros(10, bool), [True, True]]
    plain = choose_threshold(conf, correct, is_oos)
    weighted = choose_threshold(conf, correct, is_oos, np.where(is_oos, 5.0, 1.0))
    assert plain < 0.5 < 0.7 < weighted  # counted five times, both are worth escalating


def test_fold_split_holds_every_example_out_once_but_singletons():
    import importlib

    train = importlib.import_module("bot.nlu.train")
    labels = ["a"] * 7 + ["b"] * 5 + ["out_of_scope"] * 3 + ["lonely"]
    folds = train.fold_split(labels, 0.2)
    assert len(folds) == 5
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(15))  # each once; "lonely" (16th) never
    for tr, h in folds:
        assert not set(tr) & set(h) and len(tr) + len(h) == len(labels)
        assert 15 in tr
