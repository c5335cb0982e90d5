"""`Interpreter.parse(text) -> Prediction`: step 6 of the message path, pure and in memory.

Loaded once from a model directory (`load_interpreter`); parsing touches no disk and no
network. Retrieval intents come back as intent "faq" with retrieval_intent "faq/ask_x"; the
ranking keeps full names. Below the calibrated threshold the intent is "out_of_scope"; the
evidence raises that bar for the best intent (`bot.nlu.fallback`: the intent's own bar, content
words it never speaks of). Confidences and the ranking stay the calibrated probabilities.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bot.errors import NluError
from bot.messages import Entity, Prediction
from bot.nlu import model as store
from bot.nlu.classifier import single_vector
from bot.nlu.data import base_intent
from bot.nlu.entities import map_synonyms, merge
from bot.nlu.evidence import NEAR_COPY

MAX_TEXT = 1000  # longer texts are cut: SMS bodies rarely pass 10 segments
CACHE_SIZE = 4096  # parse results kept per loaded model (a few hundred KB)
RECENT_EMBEDDINGS = 4096  # sentence vectors kept for `embed` (the topic sweep): ~6 MB at 384-d
# A text with no n-gram the model knows keeps its ranking (for the inbox) at zero confidence.
UNKNOWN_TEXT_CONFIDENCE = 0.0


def load_interpreter(model_dir: Path) -> Interpreter:
    """Open a model directory, or the newest model inside a models directory."""
    model_dir = Path(model_dir)
    if not (model_dir / "metadata.json").is_file():
        latest = store.latest_model(model_dir) if model_dir.is_dir() else None
        if latest is None:
            raise NluError(f"no trained NLU model in {model_dir}; run `fanline train`")
        model_dir = latest
    return Interpreter(store.load(model_dir), model_dir)


class Interpreter:
    """A loaded model. parse() is deterministic, so results are cached per normalised text."""

    def __init__(
        self, model: store.NluModel, model_dir: Path | None = None, cache_size: int = CACHE_SIZE
    ):
        self.model = model
        self.model_dir = model_dir
        self.fingerprint: str = model.fingerprint
        self.threshold: float = model.calibration.threshold
        self._classes = model.linear.classes
        self._oos_col = (
            self._classes.index(model.oos_intent) if model.oos_intent in self._classes else None
        )
        sizes = [f.size for f in model.featurizers]
        self._offsets = [int(x) for x in np.cumsum([0] + sizes[:-1])]
        self.encoder = self._open_encoder(model.embedding_options)
        # Fans send the same short texts ("TOUR", "yes", "thanks") again and again. The cache
        # holds the threshold-free part of a parse; it dies with this loaded model.
        self._cache = _Lru(cache_size)
        # the entities of recent texts, exactly as written (extraction sees case and spacing)
        self._entities = _Lru(cache_size)
        # sentence embeddings computed ahead, several texts in one encoder call (`prefetch`)
        self._embeddings: dict[str, np.ndarray] = {}
        # the embeddings of recent parses, for `embed`: the topic sweep groups texts that were
        # parsed moments before, and need not encode them again
        self._recent: _Lru = _Lru(RECENT_EMBEDDINGS)
        self._lowercase = all(f.options["lowercase"] for f in model.featurizers) and (
            self.encoder is None or self.encoder.case_insensitive
        )
        # plain `char` n-grams see runs of spaces; words, char_wb and the encoder do not
        self._collapse = all(f.options["analyzer"] != "char" for f in model.featurizers)

    @staticmethod
    def _open_encoder(options: dict[str, Any] | None):
        if options is None:
            return None
        from bot.nlu.embeddings import open_encoder

        encoder, identity = open_encoder(options)
        if options.get("model_sha256") and identity != options["model_sha256"]:
            raise NluError(
                "the embedding model changed since training; run `fanline train --force`"
            )
        return encoder

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def with_threshold(self, threshold: float) -> Interpreter:
        """The same model (and cache) with another out-of-scope threshold (benchmarks, reports)."""
        clone = copy.copy(self)
        clone.threshold = threshold
        return clone

    def cache_info(self) -> CacheInfo:
        return self._cache.info()

    def _intents(self, key: str) -> _Intents:
        found = self._cache.get(key)
        if found is None:
            found = self._classify(key)
            self._cache.put(key, found)
        self._embeddings.pop(key, None)
        return found

    def key(self, text: str) -> str:
        """What a text is cached and classified as."""
        return normalise(text[:MAX_TEXT], self._lowercase, self._collapse)

    def needs_encoding(self, text: str) -> bool:
        """True when parsing this text would run the sentence encoder (not cached yet)."""
        return self.encoder is not None and not self._cache.has(self.key(text))

    def prefetch(self, texts: list[str]) -> None:
        """Encode several texts in one encoder call, ahead of their `parse`: batching costs
        far less per text than one call each. Safe to run in a worker thread."""
        if self.encoder is None:
            return
        keys = list(dict.fromkeys(k for k in map(self.key, texts) if not self._cache.has(k)))
        if keys:
            vectors = self.encoder.encode(keys, batch_size=len(keys))
            self._embeddings.update(zip(keys, vectors, strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        """The sentence encoder's unit vectors for texts (recent parses' reused; the rest
        encoded in one call). Safe in a worker thread. NluError without an encoder."""
        if self.encoder is None:
            raise NluError("this model has no sentence encoder")
        keys = [self.key(t) for t in texts]
        found = {k: v for k in dict.fromkeys(keys) if (v := self._recent.peek(k)) is not None}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            vectors = self.encoder.encode(missing, batch_size=64)
            for k, v in zip(missing, vectors, strict=True):
                found[k] = v
                self._recent.put(k, v)
        if not keys:
            return np.zeros((0, self.encoder.dimension), np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(raw per-intent scores, classifier decisions); raw = margin - oos vote + closeness."""
        raw, decisions, _ = self._scores(text)
        return raw, decisions

    def _scores(self, text: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """Also whether the text has any n-gram the model knows (see `unknown_text`)."""
        text = text[:MAX_TEXT]
        vector = single_vector(self.model.featurizers, self._offsets, text)
        embedding = None
        if self.encoder is not None:
            embedding = self._embeddings.pop(text, None)
            if embedding is None:
                embedding = self.encoder.encode_one(text)
            self._recent.put(text, embedding)
        # own nearness: the nearest example of the best intent itself (top 1), not of any
        top_k = 1 if self.model.own_nearness else self.model.neighbour_top_k
        decisions, closeness = self.model.linear.decide_one(vector, embedding, top_k, self._oos_col)
        raw = decisions.copy()
        if self._oos_col is not None:
            raw -= max(decisions[self._oos_col], 0.0)
        known = vector is None or len(vector.indices) > 0
        return raw + self.model.neighbour_weight * closeness, decisions, known

    def _classify(self, normalised: str) -> _Intents:
        raw, decisions, known = self._scores(normalised)
        cal = self.model.calibration
        ranked = [int(i) for i in np.argsort(-raw) if int(i) != self._oos_col]
        best = ranked[0]
        # nothing the model has seen (a script or symbols it never met): no confident guess
        scale = 1.0 if known else UNKNOWN_TEXT_CONFIDENCE
        ranking = tuple(
            (self._classes[i], round(float(cal.probability(raw[i])) * scale, 4))
            for i in ranked[: self.model.ranking_length]
        )
        oos_wins = self._oos_col is not None and decisions[self._oos_col] > decisions[best]
        confidence = float(cal.probability(raw[best])) * scale
        intent = self._classes[best]
        coverage = self.model.coverage
        uncovered = coverage.uncovered(normalised, intent) if coverage is not None else ()
        unknown = (  # (the nearness only when it may matter: a word the intent never used)
            cal.unknown_words
            and bool(uncovered)
            and intent not in cal.taught
            and not self._near_copy(normalised, best)
        )
        unsupported = coverage is not None and coverage.unsupported(
            normalised, intent, uncovered, specific=cal.unsupported, unknown=unknown
        )
        penalty = cal.penalty(intent, bool(uncovered), unsupported)
        return _Intents(intent, confidence, ranking, oos_wins, penalty, uncovered)

    def _near_copy(self, text: str, column: int) -> bool:
        """Whether the text says what one of its intent's own examples says (`NEAR_COPY`)."""
        embedding = self._recent.peek(text[:MAX_TEXT]) if self.encoder is not None else None
        if embedding is None:
            return False
        return self.model.linear.own_nearness(embedding, column) >= NEAR_COPY

    def parse(self, text: str) -> Prediction:
        text = text[:MAX_TEXT]
        found = self._intents(self.key(text))
        entities = self.entities(text)
        # the evidence's bar: the threshold plus what this intent and this text's words ask for
        bar = self.threshold + found.penalty
        if found.oos_wins or found.confidence < bar or not text.strip():
            return Prediction(
                text,
                self.model.oos_intent,
                round(1.0 - found.confidence, 4),
                found.ranking,
                entities,
            )
        retrieval = found.intent if "/" in found.intent else None
        return Prediction(
            text,
            base_intent(found.intent),
            round(found.confidence, 4),
            found.ranking,
            entities,
            retrieval,
            found.uncovered,
        )

    def entities(self, text: str) -> tuple[Entity, ...]:
        text = text[:MAX_TEXT]
        entities = self._entities.peek(text)
        if entities is None:
            entities = self._extract(text)
            self._entities.put(text, entities)
        return entities  # type: ignore[no-any-return]

    def _extract(self, text: str) -> tuple[Entity, ...]:
        found: list[Entity] = []
        if self.model.patterns is not None:
            found += self.model.patterns.extract(text)
        if self.model.tagger is not None:
            found += self.model.tagger.extract(text)
        found = merge(found)
        if self.model.synonyms:
            found = map_synonyms(found, self.model.synonyms)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class _Intents:
    """The cached, threshold-free part of a parse."""

    intent: str  # best in-scope intent, full name
    confidence: float
    ranking: tuple[tuple[str, float], ...]
    oos_wins: bool
    penalty: float = 0.0  # how far above the threshold this intent's bar is for this text
    uncovered: tuple[str, ...] = ()  # content words the intent never speaks of


def normalise(text: str, lowercase: bool = True, collapse: bool = True) -> str:
    """The cache key, and what is classified: exact, because it only removes what every
    featurizer ignores anyway (case, when all lowercase; runs of whitespace, unless `char`)."""
    text = text.lower() if lowercase else text
    return " ".join(text.split()) if collapse else text


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


class _Lru:
    """A small thread-safe LRU that, unlike functools.lru_cache, can say what it holds."""

    def __init__(self, size: int):
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def has(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return found

    def peek(self, key: str) -> Any:
        """The value or None, without counting a hit or a miss."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self._size, len(self._items))
