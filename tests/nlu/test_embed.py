"""`Interpreter.embed`: the topic sweep's sentence vectors, reusing the parse's embedding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bot.errors import NluError
from bot.nlu.interpreter import Interpreter
from bot.topics.vectors import SentenceVectors, vectoriser_for


class Counting:
    """The model's encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder: Any):
        self.encoder, self.texts = encoder, 0
        self.dimension, self.case_insensitive = encoder.dimension, encoder.case_insensitive

    def encode_one(self, text: str) -> np.ndarray:
        self.texts += 1
        return self.encoder.encode_one(text)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.texts += len(texts)
        return self.encoder.encode(texts, batch_size=batch_size)


def test_embed_reuses_what_parse_computed(accurate_interp: Interpreter) -> None:
    interp = Interpreter(accurate_interp.model, accurate_interp.model_dir)
    interp.encoder = counting = Counting(interp.encoder)  # type: ignore[assignment]
    interp.parse("is the Denver show still on?")
    assert counting.texts == 1
    vectors = interp.embed(["is the Denver show still on?", "where do I park"])
    assert counting.texts == 2  # only the text never parsed was encoded
    assert vectors.shape == (2, counting.dimension) and vectors.dtype == np.float32
    alone = counting.encoder.encode_one("where do I park")
    assert np.allclose(vectors[1], alone, atol=1e-4)
    vectoriser = vectoriser_for(interp)
    assert isinstance(vectoriser, SentenceVectors) and vectoriser.dimensions == counting.dimension
    assert vectoriser.kind.startswith("sentence-")
    assert interp.embed([]).shape == (0, counting.dimension)


def test_embed_needs_an_encoder(interp: Interpreter) -> None:
    with pytest.raises(NluError):
        interp.embed(["hello"])
