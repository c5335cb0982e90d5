"""Which language a text is written in, when the NLU could not place it (pure once loaded).

Used by the pipeline's language stage (after the NLU, before the flows): a text the NLU finds
out of scope, long enough to judge and confidently in another language, gets an honest reply in
that language instead of an English "can't help": a question or request also reaches a person
(`utter_language_handoff_<code>` says so), a greeting or thanks only (`pleasantry`) does not
(`utter_language_<code>`).
py3langid ships its model inside the wheel (nothing is downloaded); it is restricted here to a
handful of languages, which makes it both faster and surer on short texts.
"""

from __future__ import annotations

import re
import threading
import unicodedata
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


# greetings, thanks, love and "how are you" in the line's other languages (accents folded): a
# text of nothing else needs no person ("hola, ¿cómo estás?"); any other word asks something
_PLEASANTRIES = frozenset(
    """hola buenas buenos dias tardes noches hey holi que tal como estas esta estan todo bien
    muy bien gracias mucho muchas mil te amo quiero adoro amamos nova saludos besos abrazo abrazos
    feliz contento contenta querida hermosa linda reina eres la mejor genial increible
    bonjour bonsoir salut coucou ca va vas comment allez tu vous merci beaucoup je t aime
    adore bisous trop contente heureux heureuse es tres belle super genial meilleure
    ciao buongiorno buonasera buonanotte come stai va sto sono bene grazie mille ti amo voglio
    tanto bene baci sei la migliore bellissima felice contentissima molto oggi di scriverti
    ola oi tudo bom bem boa dia tarde noite como voce vai obrigado obrigada muito eu te amo
    beijos amo adoro linda rainha melhor estou feliz hoje com
    hallo hi guten morgen tag abend wie gehts geht es dir danke vielen dank schon ich liebe
    dich du bist die beste toll super mega freue mich so sehr heute""".split()  # noqa: SIM905
)


def pleasantry(text: str) -> bool:
    """The text only greets, thanks, says love or asks how the star is (any of the languages)."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = re.findall(r"[a-z]+", folded)
    return bool(words) and all(w in _PLEASANTRIES for w in words)


SURELY_ENGLISH = 0.99


def surely_english(text: str) -> bool:
    """The identifier is all but certain `text` is in the line's language (a mixed "i love her
    but por favor no me manden mas" is not)."""
    code, probability = _shared.identifier.classify(text)
    return bool(code == LINE_LANGUAGE and probability >= SURELY_ENGLISH)


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
