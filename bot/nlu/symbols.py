"""Emoji and other symbols spelt out as words, before any featurizer or encoder sees a text.

Used by the n-gram featurizers and the sentence encoder, at training and in `Interpreter.parse`
(step 6 of the message path). A word tokenizer drops "🤡", and the encoder's tokenizer maps
every emoji to one unknown token, so "🤡🤡", "👍" and "💀💀" all looked like the same text (and
like whatever emoji-only training example was nearest). Spelling each symbol by its Unicode name
("🤡" -> "clown face") keeps them apart and gives them the meaning their names carry.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Decorations that change nothing for meaning: variation selectors, zero-width joiner, skin
# tones, the keycap mark; dropped.
_DROP = {"\ufe0e", "\ufe0f", "\u200d", "\u20e3"} | {chr(c) for c in range(0x1F3FB, 0x1F400)}


def spell_symbols(text: str) -> str:
    """The text with each symbol (Unicode category So) replaced by its name, in spaces."""
    if text.isascii():  # the common case costs one check
        return text
    out = []
    for ch in text:
        if ch in _DROP:
            continue
        out.append(_spelt(ch) if unicodedata.category(ch) == "So" else ch)
    return "".join(out)


@lru_cache(maxsize=2048)
def _spelt(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f" {name.lower()} " if name else " "
