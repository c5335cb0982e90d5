"""Which language a text is written in, when the NLU could not place it (pure once loaded).

Used by the pipeline's language stage (after the NLU, before the flows): a text the NLU finds
out of scope, long enough to judge and confidently in another language, gets an honest reply in
that language (`utter_language_<code>`) instead of an English "can't help" and an escalation.
py3langid ships its model inside the wheel (nothing is downloaded); it is restricted here to a
handful of languages, which makes it both faster and surer on short texts.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

LINE_LANGUAGE = "en"
LANGUAGES = ("en", "es", "fr", "it", "pt", "de")
MIN_LETTERS = 12  # shorter texts ("ok", "lol", "ciao") are not evidence of a language
MIN_WORDS = 2
MIN_PROBABILITY = 0.9
REPLY_PROBABILITY = 0.6  # for the language of a compliance reply


IN_SCOPE_CONFIDENCE = 0.5  # the flow engine's default trigger threshold


def reply_language(text: str, intent: str | None, confidence: float) -> str | None:
    """The language to answer in when the NLU found no intent for `text` (else None)."""
    if intent not in (None, "out_of_scope") and confidence >= IN_SCOPE_CONFIDENCE:
        return None  # the NLU placed it: answered by the flows, in the line's language
    return identify(text)


def identify(text: str, min_probability: float = MIN_PROBABILITY) -> str | None:
    """The language code of `text` when it is clearly not the line's, else None. A lower
    `min_probability` suits a text already known to be a STOP request (only its reply's
    language is at stake)."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS or len(text.split()) < MIN_WORDS:
        return None
    code, probability = _shared.identifier.classify(text)
    if code == LINE_LANGUAGE or probability < min_probability:
        return None
    return str(code)


class _Shared:
    _lock = threading.Lock()

    @cached_property
    def identifier(self) -> Any:
        with self._lock:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(LANGUAGES))
            return identifier


_shared = _Shared()


def warm_up() -> None:
    """Load the model now (start-up) rather than on the first foreign text."""
    _shared.identifier  # noqa: B018
