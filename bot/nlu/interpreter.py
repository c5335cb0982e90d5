"""`Interpreter.parse(text) -> Prediction`: step 6 of the message path, pure and in memory.

Loaded once from a model directory (`load_interpreter`); parsing touches no disk and no
network. Retrieval intents come back as intent "faq" with retrieval_intent "faq/ask_x"; the
ranking keeps full names. Below the calibrated threshold the intent is "out_of_scope".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import NluError
from bot.messages import Entity, Prediction
from bot.nlu import model as store
from bot.nlu.classifier import single_vector
from bot.nlu.data import base_intent
from bot.nlu.entities import map_synonyms, merge

MAX_TEXT = 1000  # longer texts are cut: SMS bodies rarely pass 10 segments


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
    def __init__(self, model: store.NluModel, model_dir: Path | None = None):
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
        self._encoder = self._open_encoder(model.embedding_options)

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
        """The same model with another out-of-scope threshold (benchmarks, what-if reports)."""
        clone = Interpreter.__new__(Interpreter)
        for name in (
            "model",
            "model_dir",
            "fingerprint",
            "_classes",
            "_oos_col",
            "_offsets",
            "_encoder",
        ):
            setattr(clone, name, getattr(self, name))
        clone.threshold = threshold
        return clone

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(raw per-intent scores, classifier decisions); raw = margin - oos vote + closeness."""
        text = text[:MAX_TEXT]
        vector = single_vector(self.model.featurizers, self._offsets, text)
        embedding = self._encoder.encode([text])[0] if self._encoder is not None else None
        decisions, closeness = self.model.linear.decide_one(vector, embedding)
        raw = decisions.copy()
        if self._oos_col is not None:
            raw -= max(decisions[self._oos_col], 0.0)
        return raw + self.model.neighbour_weight * closeness, decisions

    def parse(self, text: str) -> Prediction:
        raw, decisions = self.scores(text)
        cal = self.model.calibration
        ranked = [int(i) for i in np.argsort(-raw) if int(i) != self._oos_col]
        best = ranked[0]
        confidence = float(cal.probability(raw[best]))
        oos_wins = self._oos_col is not None and decisions[self._oos_col] > decisions[best]
        ranking = tuple(
            (self._classes[i], round(float(cal.probability(raw[i])), 4))
            for i in ranked[: self.model.ranking_length]
        )
        entities = self.entities(text)
        if oos_wins or confidence < self.threshold or not text.strip():
            return Prediction(
                text, self.model.oos_intent, round(1.0 - confidence, 4), ranking, entities
            )
        intent = self._classes[best]
        retrieval = intent if "/" in intent else None
        return Prediction(
            text, base_intent(intent), round(confidence, 4), ranking, entities, retrieval
        )

    def entities(self, text: str) -> tuple[Entity, ...]:
        text = text[:MAX_TEXT]
        found: list[Entity] = []
        if self.model.patterns is not None:
            found += self.model.patterns.extract(text)
        if self.model.tagger is not None:
            found += self.model.tagger.extract(text)
        found = merge(found)
        if self.model.synonyms:
            found = map_synonyms(found, self.model.synonyms)
        return tuple(found)
