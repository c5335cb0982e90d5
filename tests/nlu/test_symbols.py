"""Emoji and symbols: spelt as words for every featurizer, and no confident guess from nothing."""

from __future__ import annotations

import numpy as np
import pytest

from bot.nlu.evaluate import predict_batch
from bot.nlu.symbols import spell_symbols

from .conftest import HAS_EMBEDDINGS


def test_symbols_are_spelt_by_name_and_decorations_dropped():
    assert spell_symbols("🤡🤡").split() == ["clown", "face", "clown", "face"]
    assert spell_symbols("👍🏽").split() == ["thumbs", "up", "sign"]  # the skin tone is dropped
    assert spell_symbols("❤️").split() == ["heavy", "black", "heart"]
    assert spell_symbols("when is the tour?") == "when is the tour?"
    assert spell_symbols("héllo") == "héllo"  # letters are letters, in any script


def test_different_emoji_are_different_features(interp):
    vectors = [
        {int(i) for i in f.vector(text).indices}
        for text in ("🤡🤡", "👍", "💀💀")
        for f in interp.model.featurizers[-1:]
    ]
    assert vectors[0] and vectors[1] and vectors[2]
    assert vectors[0] != vectors[1] != vectors[2]


@pytest.mark.skipif(not HAS_EMBEDDINGS, reason="accurate pipeline's model package not installed")
def test_the_encoder_no_longer_maps_every_emoji_to_one_token(accurate_interp):
    encoder = accurate_interp.encoder
    clown, thumbs = encoder.encode_one("🤡🤡"), encoder.encode_one("👍")
    assert float(clown @ thumbs) < 0.95
    np.testing.assert_allclose(encoder.encode(["🤡🤡"])[0], clown, atol=1e-5)


@pytest.mark.parametrize("text", ["你好吗", "ꙮꙮ", "ǂǂ"])
def test_a_text_with_no_known_feature_gets_no_confident_guess(interp, text):
    p = interp.parse(text)
    assert p.intent == "out_of_scope"
    assert all(conf == 0.0 for _, conf in p.ranking)
    assert predict_batch(interp, [text]).confidence[0] == 0.0  # the batch path agrees
