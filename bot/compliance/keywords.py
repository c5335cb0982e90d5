"""Exact compliance keywords: the first and cheapest check on every inbound text (pure).

US carriers (CTIA) and Twilio's default opt-out handling treat these single words as opt-out:
STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE; START / UNSTOP as opt-in; HELP /
INFO as help. A whole text that is exactly one of them (any case, punctuation and emoji
ignored) is decided here, before typos, the phrase model or anything else is consulted.
"""

from __future__ import annotations

import unicodedata

# the carriers' and Twilio's list, plus spellings fans use for the same thing
CARRIER_OPT_OUT = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_OUT_WORDS = CARRIER_OPT_OUT | {
    "STOP ALL", "OPT OUT", "UNSUB", "STOP PLEASE", "PLEASE STOP", "STOP PLS", "PLS STOP",
    "STOP PLZ", "PLZ STOP", "STOP NOW", "STOP IT", "STAHP", "STAP", "REMOVE", "REMOVE ME",
    "UNSUBSCRIBE ME", "UNSUBSCRIBE PLEASE", "STOP TEXTING", "NO MORE",
    # other languages: what a fan of an English line still reasonably sends
    "PARAR", "PARE", "PARA YA", "BASTA", "BAJA", "DARME DE BAJA", "CANCELAR", "ALTO",
    "ARRET", "ARRETER", "ARRETEZ", "ARRETE", "DESABONNER", "DESINSCRIRE",
    "FERMATI", "DISISCRIVI", "DISISCRIVIMI", "CANCELLA", "CANCELLAMI",
    "SAIR", "DESCADASTRAR", "CANCELAR INSCRICAO",
}  # fmt: skip
OPT_IN_WORDS = frozenset(
    {"START", "UNSTOP", "SUBSCRIBE", "RESUBSCRIBE", "START AGAIN", "RESTART", "RESUBSCRIBE ME",
     "SUBSCRIBE ME", "OPT IN", "OPTIN", "COMENZAR", "INICIAR", "REANUDAR", "ALTA",
     "RECOMMENCER", "INIZIA", "RICOMINCIA", "COMECAR", "RECOMECAR", "VOLTAR"}
)  # fmt: skip
# HELP in the languages a fan line is most often texted in; the value is the language, so a
# line that defines `utter_help_<lang>` answers in it
HELP_WORDS: dict[str, str | None] = {
    "HELP": None, "INFO": None, "HELP ME": None, "HELP PLEASE": None, "HALP": None,
    "AYUDA": "es", "AYUDAME": "es", "AIDE": "fr", "AIDEZ MOI": "fr", "AIUTO": "it",
    "AJUDA": "pt", "HILFE": "de",
}  # fmt: skip
# answers to "Reply STOP to stop all texts?" that confirm it
CONFIRM_WORDS = frozenset(
    {"YES", "Y", "YEP", "YEAH", "YA", "YUP", "YES PLEASE", "YES STOP", "YES PLS", "YESS",
     "CONFIRM", "SI", "OUI", "SIM", "STOP"}
)  # fmt: skip
OPT_OUT_LANGUAGE = {
    "PARAR": "es", "BASTA": "es", "BAJA": "es", "CANCELAR": "es", "ALTO": "es",
    "ARRET": "fr", "ARRETER": "fr", "ARRETEZ": "fr", "DESABONNER": "fr", "FERMATI": "it",
    "DISISCRIVI": "it", "CANCELLA": "it", "SAIR": "pt", "DESCADASTRAR": "pt",
}  # fmt: skip


def normalise(text: str) -> str:
    """Upper-case words only: accents, punctuation, emoji and extra spaces removed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch) and ch not in "'’")
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(kept.upper().split())


def exact(
    words: str, *, subscription: str, asked: bool, yes_rejoins: bool = True
) -> tuple[str, str | None] | None:
    """(kind, language) for a text that is exactly a keyword, else None. `words` is normalised.
    `yes_rejoins`: False after an opt-out decided by the phrase model, where the fan's YES
    answers what they were last told, not a carrier's "reply YES to rejoin"."""
    if asked and words in CONFIRM_WORDS:
        return "opt_out", None  # the fan said yes to "Reply STOP to stop all texts?"
    if words in OPT_OUT_WORDS:
        return "opt_out", OPT_OUT_LANGUAGE.get(words)
    if words in OPT_IN_WORDS or (
        words in ("YES", "SI", "OUI", "SIM") and subscription == "unsubscribed" and yes_rejoins
    ):
        # YES re-subscribes only someone who opted out (as carriers do); otherwise it's an answer
        return "opt_in", None
    if words in HELP_WORDS:
        return "help", HELP_WORDS[words]
    return None
