"""Training's small scikit-learn fits run on one BLAS thread: SciPy's L-BFGS-B (1.15 on) spent
nine tenths of the demo line's training in OpenBLAS threads contending on two busy cores."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

from bot.nlu.entities import TokenTagger


def test_the_entity_tagger_fits_on_one_blas_thread(
    fixture_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one processor: BLAS has one thread anyway")
    seen: list[int] = []
    fit = LogisticRegression.fit

    def counting(self: LogisticRegression, *args: Any, **kwargs: Any) -> Any:
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counting)
    options = {"C": 5.0, "window": 2, "min_examples": 2, "min_confidence": 0.6}
    assert TokenTagger.fit(fixture_data, options) is not None
    assert seen and set(seen) == {1}
