"""The training a teach asks for, in a child process: `python -m bot.teach.retrain` reads
{project_dir, model_dir, pipeline, traffic, watch_parent} as JSON on stdin's first line and
prints {model_dir, threshold}. With `watch_parent` the parent keeps stdin open, and the child
exits as soon as it closes: a worker killed with `kill -9` leaves no training behind it.

Why a process: training holds the interpreter for seconds (k-fold fits, featurising), and in
the server's own process that time is taken from the fans' turns. The child runs at a lower
CPU priority, so the server keeps answering while it trains.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

NICE = 10


def train_here(
    project_dir: Path, model_dir: Path, pipeline: str | None, traffic: list[Any] | None
) -> tuple[Path, float]:
    """`fanline train`'s training of this project; (the model's folder, its threshold). The
    line's compliance phrase model is saved beside the NLU model, as `fanline train` does: else
    the server would train it at reload, in the fans' process."""
    from bot.compliance import line
    from bot.nlu import train as train_model
    from bot.nlu.config import project_config
    from bot.nlu.data import load_training_data

    cfg = project_config(project_dir / "config.yml", pipeline)
    data = load_training_data([project_dir / "data"])
    # in the model's folder before it is published: a reloader polling between the two would
    # load the NLU model alone and train the phrase model in the fans' process
    target = train_model(cfg, data, model_dir, progress=False, traffic=traffic,
                         beside=lambda folder: line.ensure(data, folder))  # fmt: skip
    line.ensure(data, target)  # a model reused as it was, trained before the phrase model
    meta = json.loads((target / "metadata.json").read_text())
    return target, float(meta["calibration"]["threshold"])


def main() -> int:
    from bot.nlu.train import TrafficText

    job = json.loads(sys.stdin.readline())
    if job.get("watch_parent"):
        threading.Thread(target=_exit_with_parent, daemon=True).start()
    with contextlib.suppress(OSError):  # not permitted: train at the same priority
        os.nice(NICE)
    traffic = job.get("traffic")
    target, threshold = train_here(
        Path(job["project_dir"]), Path(job["model_dir"]), job.get("pipeline"),
        None if traffic is None else [TrafficText(t, i) for t, i in traffic],
    )  # fmt: skip
    print(json.dumps({"model_dir": str(target), "threshold": threshold}))
    return 0


def _exit_with_parent() -> None:
    """Return from reading stdin only at its end: the parent closed it, stopped or died."""
    # the raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read holds its
    # lock and makes the interpreter's exit fail (the training's own successful exit included)
    while os.read(0, 65536):
        pass
    os._exit(70)


if __name__ == "__main__":
    sys.exit(main())
