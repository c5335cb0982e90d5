"""The hot path of step 6: the parse cache, top-k neighbour search, single-text encoder."""

from __future__ import annotations

import numpy as np
import pytest

from bot.nlu.classifier import single_vector
from bot.nlu.evaluate import predict_batch
from bot.nlu.interpreter import Interpreter, normalise

from .test_interpreter import PARAPHRASES, UNKNOWN

VARIANTS = [("TOUR", "tour"), ("  Where's   the MERCH shop ", "where's the merch shop")]


def test_normalise_only_removes_what_features_ignore():
    assert normalise("  Hi\tTHERE\n you ") == "hi there you"
    assert normalise("Hi  THERE", lowercase=False) == "Hi THERE"
    assert normalise("a  b", collapse=False) == "a  b"


@pytest.mark.parametrize("which", ["interp", "accurate_interp"])
@pytest.mark.parametrize(("text", "same"), VARIANTS)
def test_normalised_text_scores_exactly_like_the_original(request, which, text, same):
    interp = request.getfixturevalue(which)
    raw, decisions = interp.scores(text)
    raw2, decisions2 = interp.scores(same)
    np.testing.assert_allclose(raw, raw2, atol=1e-6)
    np.testing.assert_allclose(decisions, decisions2, atol=1e-6)


def test_repeated_texts_hit_the_cache_and_keep_their_own_text_and_entities(default_model_dir):
    from bot.nlu import load_interpreter

    fresh = load_interpreter(default_model_dir)
    first = fresh.parse("any shows in nyc")
    again = fresh.parse("ANY shows in NYC ")
    info = fresh.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert again.text == "ANY shows in NYC " and first.text == "any shows in nyc"
    assert (again.intent, again.confidence, again.ranking) == (
        first.intent,
        first.confidence,
        first.ranking,
    )
    assert [(e.value, e.start, e.end) for e in again.entities] == [
        (e.value, e.start, e.end) for e in first.entities
    ]


def test_cache_is_threshold_free(default_model_dir):
    from bot.nlu import load_interpreter

    fresh = load_interpreter(default_model_dir)
    assert fresh.parse("bye").intent == "goodbye"
    strict = fresh.with_threshold(1.0)
    assert strict.parse("bye").intent == "out_of_scope"
    assert fresh.parse("bye").intent == "goodbye"
    assert fresh.cache_info().hits == 2  # the clone shares the cache, not the threshold


def test_cache_is_bounded(default_model_dir):
    from bot.nlu.model import load

    small = Interpreter(load(default_model_dir), cache_size=2)
    for text in ("hi", "bye", "tour", "merch"):
        small.parse(text)
    assert small.cache_info().currsize == 2


def _brute_force_closeness(interp, text: str) -> float:
    """Nearest in-scope example over the whole training set (what top-k approximates)."""
    lin = interp.model.linear
    vector = single_vector(interp.model.featurizers, interp._offsets, text)
    if lin.neighbours_embeddings is not None:
        return float((lin.neighbours_embeddings @ interp.encoder.encode_one(text)).max())
    unit = vector.values / np.linalg.norm(vector.values)
    return float((lin.neighbours_ngrams[vector.indices].T @ unit).max())


@pytest.mark.parametrize("text", [t for t, _ in PARAPHRASES[:5]] + UNKNOWN[:3])
def test_top_k_neighbour_search_equals_brute_force_when_k_covers_all(interp, text):
    lin = interp.model.linear
    vector = single_vector(interp.model.featurizers, interp._offsets, text)
    every = len(lin.classes)
    _, close = lin.decide_one(vector, None, every, interp._oos_col)
    assert close == pytest.approx(_brute_force_closeness(interp, text), abs=1e-5)
    _, close_top1 = lin.decide_one(vector, None, 1, interp._oos_col)
    assert close_top1 <= close + 1e-9


def test_neighbours_are_grouped_by_class_without_out_of_scope(interp):
    lin = interp.model.linear
    starts = lin.starts
    assert starts[0] == 0 and (np.diff(starts) >= 0).all()
    assert starts[-1] == lin.neighbours_ngrams.shape[1]
    oos = lin.classes.index("out_of_scope")
    assert starts[oos + 1] == starts[oos]  # out_of_scope examples are never "close"


def test_accurate_single_text_path_equals_padded_batch(accurate_interp):
    texts = [t for t, _ in PARAPHRASES] + UNKNOWN
    batch = accurate_interp.encoder.encode(texts)
    single = np.stack([accurate_interp.encoder.encode_one(t) for t in texts])
    np.testing.assert_allclose(single, batch, atol=1e-4)
    result = predict_batch(accurate_interp, texts)
    for text, best, conf in zip(texts, result.best, result.calibrated, strict=True):
        p = accurate_interp.parse(text)
        assert p.ranking[0][0] == best
        assert abs(p.ranking[0][1] - conf) < 1e-3, text


def test_accurate_encoder_truncates_long_texts(accurate_interp):
    encoder = accurate_interp.encoder
    assert len(encoder.tokenizer.encode("word " * 500).ids) == 64
    assert encoder.case_insensitive
