"""Retraining after a teach: the same training as `fanline train`, off the event loop, one at a time.

The server's reloader (`bot.reloader`) notices the new content at once (and refuses it while its
model is missing: a server never trains) and the new model when it lands, then swaps both in
between turns. Requests that come while a training runs are folded into one more run, so a
burst of teaches costs at most two trainings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
TRAIN_TIMEOUT_S = 1800


class Teacher:
    """Where a fan line's content and models live, and its retraining."""

    def __init__(
        self,
        project_dir: Path,
        *,
        model_dir: Path | None = None,
        pipeline: str | None = None,
        db: Any = None,  # bot.storage.Database: labelled fan texts for the threshold
        actions: set[str] | None = None,  # known custom actions, for validation (None: unchecked)
        max_segments: int = 3,
        autotrain: bool = True,  # False: edits only schedule nothing (`fanline teach --no-train`)
    ):
        self.project_dir = Path(project_dir)
        self.model_dir = Path(model_dir) if model_dir else self.project_dir / "models"
        self.pipeline = pipeline
        self.db = db
        self.actions = actions
        self.max_segments = max_segments
        self.autotrain = autotrain
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._state: dict[str, Any] = {"training": False, "last_model": None, "last_error": None,
                                       "last_threshold": None, "last_seconds": None}  # fmt: skip

    @classmethod
    def for_runtime(cls, runtime: Any) -> Teacher:
        """The teacher of a running fan line (`bot.runtime.Runtime`)."""
        settings = runtime.settings
        return cls(
            settings.project_dir, model_dir=settings.model_dir, pipeline=settings.nlu_pipeline,
            db=runtime.store.db, actions=runtime.actions.known_actions() or None,
            max_segments=settings.max_segments,
        )  # fmt: skip

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def schedule(self) -> asyncio.Task[None]:
        """Start a training, or ask the running one for one more run after it; the task."""
        if self._task is not None and not self._task.done():
            self._again = True
            return self._task
        self._again = False
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self._task

    async def retrain(self) -> dict[str, Any]:
        """Train (see `schedule`) and wait for it; the state after."""
        await asyncio.shield(self.schedule())
        return self.state

    async def wait(self) -> dict[str, Any]:
        """Wait for the training under way, if any; the state after."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return self.state

    async def _run(self) -> None:
        self._state["training"] = True
        try:
            while True:
                self._again = False
                await self._train_once()
                if not self._again:
                    return
        finally:
            self._state["training"] = False

    async def _train_once(self) -> None:
        from bot.teach.service import training_traffic_of

        started = time.perf_counter()
        try:
            traffic = await training_traffic_of(self.db) if self.db is not None else None
            model_dir, threshold = await asyncio.to_thread(self._train, traffic)
        except Exception as exc:  # reported in `state`; the server keeps its current model
            self._state["last_error"] = f"{type(exc).__name__}: {exc}"
            log.error("retraining failed (%s)", type(exc).__name__)
            return
        self._state.update(last_model=model_dir.name, last_error=None, last_threshold=threshold,
                           last_seconds=round(time.perf_counter() - started, 2))  # fmt: skip
        log.info("retrained: model %s, threshold %.3f", model_dir.name, threshold)

    def _train(self, traffic: Any) -> tuple[Path, float]:
        """Train in a child process (`bot.teach.retrain`): the server's turns keep the CPU."""
        job = {"project_dir": str(self.project_dir), "model_dir": str(self.model_dir),
               "pipeline": self.pipeline,
               "traffic": None if traffic is None else [[t.text, t.intent] for t in traffic]}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "bot.teach.retrain"], input=json.dumps(job),
            capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S, cwd=self.project_dir,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )  # fmt: skip
        if done.returncode != 0:  # the child's last line names the error (content, not fans)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"training failed: {last[:300]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return Path(result["model_dir"]), float(result["threshold"])
