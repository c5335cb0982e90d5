"""Concurrent texts share encoder calls, and get exactly what one-at-a-time parsing gives."""

from __future__ import annotations

import asyncio
import copy

from bot.nlu.batching import EncodingBatcher
from bot.nlu.interpreter import Interpreter

TEXTS = [
    "when do vip tickets go on sale",
    "how much are the tickets",
    "tell me about the weather on mars",
    "is there a fan club",
    "can i buy merch online",
    "who are you",
    "TICKETS?!",
    "ok thanks bye",
]


def fresh(interp: Interpreter) -> Interpreter:
    """The same model with an empty cache, so every text needs the encoder."""
    return Interpreter(interp.model, interp.model_dir)


async def test_concurrent_texts_share_encoder_calls_and_match_single_parses(
    accurate_interp,
) -> None:
    alone = fresh(accurate_interp)
    expected = [alone.parse(t) for t in TEXTS]
    batcher = EncodingBatcher(fresh(accurate_interp), max_batch=16)

    got = await asyncio.gather(*(batcher.parse(t) for t in TEXTS))

    assert batcher.calls < len(TEXTS)  # batched: fewer encoder calls than texts
    assert [(p.intent, p.entities) for p in got] == [(p.intent, p.entities) for p in expected]
    for a, b in zip(got, expected, strict=True):
        assert abs(a.confidence - b.confidence) < 0.02  # padding changes floats, not decisions


async def test_cached_texts_skip_the_encoder(accurate_interp) -> None:
    interp = fresh(accurate_interp)
    batcher = EncodingBatcher(interp)
    await batcher.parse("how much are the tickets")
    calls = batcher.calls
    again = await batcher.parse("How much are the   tickets")  # same cache key
    assert batcher.calls == calls and again.intent is not None
    assert interp.cache_info().hits >= 1


async def test_a_model_without_an_encoder_parses_directly(interp) -> None:
    batcher = EncodingBatcher(copy.copy(interp))
    prediction = await batcher.parse("how much are the tickets")
    assert batcher.calls == 0 and prediction.intent is not None
