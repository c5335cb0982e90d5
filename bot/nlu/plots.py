"""Pictures for `fanline test nlu`: a confusion matrix and a confidence histogram (PNG).

Content time only; the one module importing matplotlib (a dev/optional dependency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.nlu.evaluate import Report


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def confusion_png(
    truth: list[str], predicted: list[str], path: Path, max_intents: int = 40
) -> Path | None:
    """Rows: the intent the text belongs to; columns: what the model said. Big off-diagonal
    squares are the pairs to fix. With many intents, shows those involved in most mistakes."""
    plt = _pyplot()
    if plt is None:
        return None
    labels = _labels(truth, predicted, max_intents)
    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        if t in index and p in index:
            matrix[index[t], index[p]] += 1
    size = max(5.0, 0.32 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    ax.set_title("Which intents get mixed up")
    if len(labels) <= 25:
        for (i, j), n in np.ndenumerate(matrix):
            if n:
                color = "white" if n > matrix.max() / 2 else "black"
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _labels(truth: list[str], predicted: list[str], limit: int) -> list[str]:
    names = sorted(set(truth) | set(predicted))
    if len(names) <= limit:
        return names
    errors: dict[str, int] = {}
    for t, p in zip(truth, predicted, strict=True):
        if t != p:
            errors[t] = errors.get(t, 0) + 1
            errors[p] = errors.get(p, 0) + 1
    return sorted(sorted(errors, key=lambda n: -errors[n])[:limit])


def histogram_png(rep: Report, path: Path) -> Path | None:
    """Confidence of right and wrong answers; the dashed line is the out-of-scope threshold."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 21)
    ax.hist(rep.confidences_right, bins=bins, alpha=0.7, label="right", color="tab:green")
    ax.hist(rep.confidences_wrong, bins=bins, alpha=0.7, label="wrong", color="tab:red")
    ax.axvline(rep.threshold, linestyle="--", color="black", label=f"threshold {rep.threshold:.2f}")
    ax.set_xlabel("confidence")
    ax.set_ylabel("texts")
    ax.set_title("Confidence of right and wrong answers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
