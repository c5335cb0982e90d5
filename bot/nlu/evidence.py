"""Evidence that the chosen intent covers THIS text, beyond being the nearest known choice.

Pure, used at training (fitted on the line's own data, measured on out-of-fold texts) and in
`Interpreter.parse` (step 6), and by the flow engine for replies to a broadcast (step 7).

- **Uncovered content words.** Each intent's vocabulary is the words of its training examples
  (and of its response texts when given). A content word of the question (not a generic word
  such as "when", "is", "the") that the predicted intent never speaks of is evidence the
  intent does not answer it: "can i park at the venue" is not the accessibility FAQ because
  nothing about accessibility mentions parking. Near spellings count as covered ("tickts").
- **Nothing specific.** A question with such a word whose other content words are only the
  line's anchors (words most intents speak of: "nova", "show", "tour"; slot values such as a
  city) asks about that word, not about the intent's topic: "where do i park for the seattle
  show" speaks of nothing shows-near-me knows but the city and "show". It is not answered
  (`unsupported`), whatever the confidence: the classifier is sure of such texts because
  everything it recognises in them points one way.
- **Per-intent thresholds** and **nearness to the intent's own examples** live in
  `bot.nlu.fallback`; this module holds the word-level evidence and the broadcast bar.
- **Replies to a broadcast about its news.** A question that shares content words with the
  broadcast it replies to asks about that news; a generic FAQ answer does not know it, so such
  a reply is answered only when its intent speaks of all its words and with a higher bar
  (`NEWS_BAR`); else a person and its topic. So is a question asking what the news changed
  ("will the meet and greet still happen", "is it cancelled now"). An answer taught from the
  replies to that broadcast knows its news (`written_for`): the ordinary bar applies.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bot.nlu.questions import is_question, split_questions

# Words that carry no topic of their own: function words, question words, auxiliaries, common
# verbs and adverbs, pronouns, fan-chat spellings. A word listed here is never "uncovered".
_GENERIC_WORDS = """
    a about above after again against all also am an and any anyone anything are aren arent
    around as ask asked asking at be because been before being below between both but by can
    cant could couldnt did didnt do does doesnt doing dont done down during each either else
    even ever every few for from further get gets getting give go goes going gone got gotta
    gonna had has hasnt have havent having he her here hers herself him himself his how i if
    im in into is isnt it its itself ive just know let lets like ll make many may me might
    mine more most much must my myself need needs never no nor not now of off on once one only
    or other our ours ourselves out over own please pls plz put re really same say says see
    shall she should shouldnt so some someone something soon still such sure take tell than
    that thats the their theirs them themselves then there theres these they theyre thing
    things think this those though tho thru to too try u ull under until up upon ur us use
    very ve via wanna want wants was wasnt way we well were werent what whats when whens where
    wheres whether which while who whom whos whose why will with without wont would wouldnt
    yall yes yet you youd youll your youre yours yourself yourselves hi hey hello ok okay yeah
    yep nope hmm oh omg lol pls thanks thank thx ty guys girl dude anyway actually again
    already always another back being better could day days does every first going good got
    great here hope kind last lot lots maybe mean new next nice none okay people place right
    since sorry stuff sure time times today tomorrow tonight way week weeks year years yes
    yesterday able also btw idk imo rn tbh fr ngl smth sth any anybody thing what's
    doing gonna wanna gotta lemme gimme kinda sorta ya yo hiii heyy cuz cause coz bc
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun weekend weekends january february march april june july august september
    october november december feb apr jun jul aug sep sept oct nov dec morning afternoon
    evening night nights noon midnight am pm hour hours minute minutes month months
    actual real literally basically seriously totally definitely probably possibly honestly
    truly simply exactly quick quickly
"""
GENERIC = frozenset(_GENERIC_WORDS.split())
# Place names: what any intent may carry, like a lookup table's values (places.txt says whence).
_PLACES_FILE = Path(__file__).with_name("places.txt")
MIN_WORD = 3  # shorter tokens ("la", "ok", "tv") carry little topic and many typos
# A word spoken of by at least this share of the line's intents (and at least ANCHOR_MIN of
# them) tells no intent apart: "nova", "show", "tour" on the demo (9 of its 34 intents).
ANCHOR_SHARE = 0.25
ANCHOR_MIN = 3
NEWS_BAR = 0.9  # confidence a reply asking about a broadcast's news needs to be answered
# A text this close (cosine, sentence embeddings) to one of its intent's own examples says what
# that example says: a word the line never used is then a synonym ("when does the presale
# begin" beside "when does the presale start"), not something the line has no answer about.
NEAR_COPY = 0.85

# Asking what the news changed: "still on?", "is it cancelled now", "meet and greet too?"
_CHANGE = re.compile(
    r"\b(?:still|anymore|now|too|cancel\w*|postpon\w*|move[ds]?|moving|chang\w*|happen\w*)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_ELONGATED = re.compile(r"([^\W\d_])\1{2,}")  # "merchhh", "pleeease": the near spelling matches
_SUFFIXES = ("'s", "ies", "ing", "es", "ed", "ly", "s")
_SIBILANTS = ("ss", "x", "zz", "ch", "sh")  # "passes", "boxes": the plural took "es"
_QUESTION = re.compile(
    r"\?|^\s*(?:who|what|whats|when|where|why|how|which|will|would|is|are|can|could|do|does|did"
    r"|should|any|anyone)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """The stems of the shipped place names (bot/nlu/places.txt)."""
    lines = _PLACES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(stem(w) for w in lines if w and not w.startswith("#"))


def stem(word: str) -> str:
    """A crude, fast stem: "parking" -> "park", "tickets" -> "ticket", "nova's" -> "nova",
    "cities" -> "city", "sizes" -> "size" (but "passes" -> "pass")."""
    word = word.lower().replace("’", "'")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_WORD:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word  # "miss", "bus", "this": no plural s
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if suffix == "es" and not base.endswith(_SIBILANTS):
                return word[:-1]  # "sizes", "codes", "dates": only the plural's s
            return base
    return word


def content_words(text: str) -> tuple[str, ...]:
    """The stems of a text's topic words, in order, each once."""
    out: dict[str, None] = {}
    for match in _WORD.finditer(text.lower().replace("’", "'")):
        word = _ELONGATED.sub(r"\1\1", match.group())
        if len(word) < MIN_WORD or word in GENERIC or word.replace("'", "") in GENERIC:
            continue
        stemmed = stem(word)
        if stemmed not in GENERIC:
            out[stemmed] = None
    return tuple(out)


@lru_cache(maxsize=4096)
def name_words(intent: str) -> frozenset[str]:
    """The stems of an intent's own name: `check_earnings` speaks of earnings even when its
    few examples say only "earn" (Rasa projects name intents after their topic)."""
    return frozenset(content_words(re.sub(r"[_/\-.]+", " ", intent)))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which content words each intent speaks of, fitted on the line's own examples."""

    words: Mapping[str, frozenset[str]]  # intent -> stems of its examples and responses
    near: Mapping[str, frozenset[str]]  # intent -> one-letter deletions of its longer stems
    shared: frozenset[str]  # stems every intent covers: lookup tables, synonyms, entity values
    anchors: frozenset[str] = frozenset()  # shared stems and those most intents speak of
    # what the whole line speaks of (every intent's words and names; their near spellings)
    every: frozenset[str] = field(default=frozenset(), compare=False)
    every_near: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            object.__setattr__(self, "anchors", _anchors(self.words, self.shared))
        every = frozenset().union(*self.words.values(), *map(name_words, self.words))
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "every_near", frozenset().union(*self.near.values()))

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        labels: Iterable[str],
        *,
        responses: Mapping[str, Iterable[str]] | None = None,
        shared: Iterable[str] = (),
        skip: Iterable[str] = (),
    ) -> Coverage:
        """`responses`: intent -> texts it answers with; `shared`: words of lookup tables and
        synonyms (any intent may carry a city); `skip`: intents with no vocabulary (out_of_scope)."""
        skipped = set(skip)
        words: dict[str, set[str]] = {}
        for text, label in zip(texts, labels, strict=True):
            if label not in skipped:
                words.setdefault(label, set()).update(content_words(text))
        for label, said in (responses or {}).items():
            if label in words:
                for text in said:
                    words[label].update(content_words(text))
        near = {
            label: frozenset(d for w in ws if len(w) >= 4 for d in _deletions(w) | {w})
            for label, ws in words.items()
        }
        shared_stems = frozenset(w for text in shared for w in content_words(text))
        return cls({k: frozenset(v) for k, v in words.items()}, near, shared_stems)

    def covers(self, intent: str, word: str) -> bool:
        own = self.words.get(intent)
        if own is None:  # an intent without examples here: no evidence either way
            return True
        if word in own or word in self.shared or word in name_words(intent) or word in places():
            return True
        if word + "e" in own:  # "making" -> "mak", "sized" -> "siz": the e the suffix took
            return True
        if len(word) < 4:
            return False
        near = self.near[intent]  # one edit away: a typo or a close inflection
        return word in near or any(d in near for d in _deletions(word))

    def uncovered(self, text: str, intent: str) -> tuple[str, ...]:
        """Content words of the text the intent (full name) does not speak of."""
        return tuple(w for w in content_words(text) if not self.covers(intent, w))

    def specific(self, text: str, intent: str) -> tuple[str, ...]:
        """Content words of the text that the intent itself speaks of and that are not anchors:
        the evidence that the text is about this intent's topic."""
        return tuple(
            w
            for w in content_words(text)
            if w not in self.anchors and w not in places() and self.covers(intent, w)
        )

    def unsupported(
        self,
        text: str,
        intent: str,
        uncovered: tuple[str, ...],
        *,
        specific: bool = True,
        unknown: bool = False,
    ) -> bool:
        """A question with a word the intent never speaks of, and nothing specific to the
        intent beside it: it asks about that word ("is the denver show indoors or outdoors").
        `unknown`: also a question that names something no intent of the line speaks of ("is
        the album explicit", "is there a fan discord"): the line has no answer about it."""
        if not uncovered or self.words.get(intent) is None or not is_question(text):
            return False
        if unknown and self.unknown(text, uncovered):
            return True
        return specific and not self.specific(text, intent)

    def unknown(self, text: str, uncovered: tuple[str, ...]) -> tuple[str, ...]:
        """Words of the text's questions (its sentences that ask something: the story before
        "when is the presale?" does not count) that no intent of the line speaks of."""
        asked = {w for s in split_questions(text) if is_question(s) for w in content_words(s)}
        return tuple(w for w in uncovered if w in asked and not self.line_covers(w))

    def line_covers(self, word: str) -> bool:
        """Whether any intent of the line speaks of the word (or of a near spelling of it)."""
        if word in self.every or word + "e" in self.every or word in self.shared:
            return True
        if word in places():
            return True
        if len(word) < 4:
            return False
        return word in self.every_near or any(d in self.every_near for d in _deletions(word))

    def state(self) -> dict[str, list[str] | dict[str, list[str]]]:
        return {
            "words": {k: sorted(v) for k, v in sorted(self.words.items())},
            "shared": sorted(self.shared),
        }

    @classmethod
    def from_state(cls, state: Mapping) -> Coverage:
        words = {k: frozenset(v) for k, v in state["words"].items()}
        near = {
            k: frozenset(d for w in ws if len(w) >= 4 for d in _deletions(w) | {w})
            for k, ws in words.items()
        }
        return cls(words, near, frozenset(state["shared"]))


def _anchors(words: Mapping[str, frozenset[str]], shared: frozenset[str]) -> frozenset[str]:
    counts = Counter(w for ws in words.values() for w in ws)
    many = max(ANCHOR_MIN, math.ceil(ANCHOR_SHARE * len(words)))
    return shared | frozenset(w for w, n in counts.items() if n >= many)


def asks_about_news(text: str, broadcast_text: str | None) -> bool:
    """A question that shares a content word with the broadcast it replies to, or asks what
    the news changed for something it did not name ("will the meet and greet still happen")."""
    if not broadcast_text or not _QUESTION.search(text):
        return False
    if _CHANGE.search(text):
        return True
    return bool(set(content_words(text)) & set(content_words(broadcast_text)))


def written_for(broadcast_text: str | None, recorded: str | None) -> bool:
    """Whether an answer written for the broadcast `recorded` (its template; placeholders
    left out) answers replies to `broadcast_text`: then it knows that news."""
    if not broadcast_text or not recorded:
        return False
    words = set(content_words(_PLACEHOLDER.sub(" ", recorded)))
    return bool(words) and words <= set(content_words(broadcast_text))
