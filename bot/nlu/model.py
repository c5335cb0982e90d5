"""A trained NLU model on disk: `metadata.json` + `arrays.npz`, no pickle, one directory per fingerprint.

Written by `bot.nlu.train`, read by `bot.nlu.interpreter.load_interpreter`. Arrays load with
`allow_pickle=False`, so a model directory can never run code when it is opened.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from bot.errors import NluError
from bot.nlu.classifier import LinearModel
from bot.nlu.entities import PatternExtractor, TokenTagger
from bot.nlu.evidence import Coverage
from bot.nlu.fallback import Calibration
from bot.nlu.features import NgramFeaturizer

FORMAT = 3  # 2: neighbours grouped by class (`nb_starts`), neighbour_top_k; 3: symbols spelt
MODEL_PREFIX = "nlu-"


@dataclass(slots=True)
class NluModel:
    fingerprint: str
    featurizers: list[NgramFeaturizer]
    embedding_options: dict[str, Any] | None
    linear: LinearModel
    calibration: Calibration
    neighbour_weight: float
    neighbour_top_k: int
    oos_intent: str
    ranking_length: int
    patterns: PatternExtractor | None
    tagger: TokenTagger | None
    synonyms: dict[str, str] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    own_nearness: bool = False  # closeness to the predicted intent's examples (else any top-k)
    coverage: Coverage | None = None  # which words each intent speaks of (bot.nlu.evidence)


def model_dir_for(out_dir: Path, fingerprint: str) -> Path:
    return out_dir / f"{MODEL_PREFIX}{fingerprint[:16]}"


def latest_model(out_dir: Path) -> Path | None:
    """The newest complete model under a models directory (what a server should load)."""
    found = [p for p in out_dir.glob(f"{MODEL_PREFIX}*") if (p / "metadata.json").is_file()]
    return max(found, key=lambda p: (p / "metadata.json").stat().st_mtime_ns) if found else None


def prune(out_dir: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest models (a loaded model lives in memory, not on disk)."""
    found = [p for p in out_dir.glob(f"{MODEL_PREFIX}*") if (p / "metadata.json").is_file()]
    found.sort(key=lambda p: (p / "metadata.json").stat().st_mtime_ns, reverse=True)
    for old in found[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return found[keep:]


def save(model: NluModel, target: Path, beside: Callable[[Path], Any] | None = None) -> Path:
    """Write atomically: a half-written model is never visible under its final name. `beside`
    writes its files (the line's compliance phrase model) into the folder before it is
    published: a reloader that sees the model sees them too."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        np.savez(tmp / "arrays.npz", **_arrays(model))
        (tmp / "metadata.json").write_text(json.dumps(_meta(model), ensure_ascii=False))
        if beside is not None:
            beside(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _arrays(model: NluModel) -> dict[str, np.ndarray]:
    lin = model.linear
    arrays: dict[str, np.ndarray] = {"bias": lin.bias, "nb_starts": lin.starts}
    for i, f in enumerate(model.featurizers):
        arrays[f"idf_{i}"] = f.idf
    if lin.ngram_weights is not None:
        arrays["ngram_weights"] = lin.ngram_weights
    if lin.embedding_weights is not None:
        arrays["embedding_weights"] = lin.embedding_weights
    if lin.neighbours_ngrams is not None:
        n = lin.neighbours_ngrams
        arrays |= {
            "nb_data": n.data,
            "nb_indices": n.indices,
            "nb_indptr": n.indptr,
            "nb_shape": np.array(n.shape),
        }
    if lin.neighbours_embeddings is not None:
        arrays["nb_embeddings"] = lin.neighbours_embeddings
    if model.tagger is not None:
        arrays["tagger_weights"] = model.tagger.weights
        arrays["tagger_bias"] = model.tagger.bias
    return arrays


def _meta(model: NluModel) -> dict[str, Any]:
    cal = model.calibration
    return {
        **model.metadata,
        "format": FORMAT,
        "fingerprint": model.fingerprint,
        "classes": model.linear.classes,
        "featurizers": [f.state() for f in model.featurizers],
        "embedding": model.embedding_options,
        "calibration": cal.state(),
        "neighbour_weight": model.neighbour_weight,
        "own_nearness": model.own_nearness,
        "coverage": model.coverage.state() if model.coverage else None,
        "neighbour_top_k": model.neighbour_top_k,
        "oos_intent": model.oos_intent,
        "ranking_length": model.ranking_length,
        "patterns": model.patterns.state() if model.patterns else None,
        "tagger": {
            "vocabulary": model.tagger.vocabulary,
            "labels": model.tagger.labels,
            "window": model.tagger.window,
            "min_confidence": model.tagger.min_confidence,
            "patterns": model.tagger.patterns,
        }
        if model.tagger
        else None,
        "synonyms": model.synonyms,
    }


def load(model_dir: Path) -> NluModel:
    meta_path = model_dir / "metadata.json"
    if not meta_path.is_file():
        raise NluError(f"no trained NLU model in {model_dir}; run `fanline train`")
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(model_dir / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise NluError(f"NLU model in {model_dir} is unreadable ({exc}); retrain it") from None
    if meta.get("format") != FORMAT:
        raise NluError(f"NLU model in {model_dir} has an old format; run `fanline train`")
    return _assemble(meta, arrays)


def _calibration(state: dict[str, Any]) -> Calibration:
    return Calibration(
        **{
            **state,
            "strict": frozenset(state.get("strict", ())),
            "taught": frozenset(state.get("taught", ())),
        }
    )


def _assemble(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> NluModel:
    featurizers = [
        NgramFeaturizer(s["options"], s["vocabulary"], arrays[f"idf_{i}"])
        for i, s in enumerate(meta["featurizers"])
    ]
    neighbours = None
    if "nb_data" in arrays:
        shape = tuple(int(x) for x in arrays["nb_shape"])
        neighbours = sparse.csr_matrix(
            (arrays["nb_data"], arrays["nb_indices"], arrays["nb_indptr"]), shape=shape
        )
    linear = LinearModel(
        meta["classes"],
        arrays.get("ngram_weights"),
        arrays.get("embedding_weights"),
        arrays["bias"],
        neighbours,
        arrays.get("nb_embeddings"),
        arrays["nb_starts"],
    )
    tagger = None
    if meta["tagger"]:
        t = meta["tagger"]
        tagger = TokenTagger(
            t["vocabulary"],
            arrays["tagger_weights"],
            arrays["tagger_bias"],
            t["labels"],
            t["window"],
            t.get("min_confidence", 0.6),
            t.get("patterns"),
        )
    patterns = meta["patterns"]
    return NluModel(
        fingerprint=meta["fingerprint"],
        featurizers=featurizers,
        embedding_options=meta["embedding"],
        linear=linear,
        calibration=_calibration(meta["calibration"]),
        neighbour_weight=meta["neighbour_weight"],
        neighbour_top_k=meta["neighbour_top_k"],
        oos_intent=meta["oos_intent"],
        ranking_length=meta["ranking_length"],
        patterns=PatternExtractor(patterns["patterns"], patterns["options"]) if patterns else None,
        tagger=tagger,
        synonyms=meta["synonyms"],
        metadata=meta,
        own_nearness=meta.get("own_nearness", False),
        coverage=Coverage.from_state(meta["coverage"]) if meta.get("coverage") else None,
    )
