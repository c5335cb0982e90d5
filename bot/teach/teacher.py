"""Retraining after a teach: a durable request in the database, trained by the worker.

A teach records a request (`bot.teach.requests`, table `retrain_requests`) and returns; the
process holding the `retrain` lease (a `worker`, or the one `all` process: `bot.roles`) claims
every pending request and trains once for all of them, in a child process at a lower CPU
priority (`bot.teach.retrain`), the same training as `fanline train`. Requests that come while
a training runs are folded into one more run. The child dies with its parent (it watches its
stdin), and a worker killed mid-training leaves its requests to the next holder of the lease.

Every process's reloader (`bot.reloader`) notices the new content at once (and refuses it while
its model is missing: a server never trains) and the new model when it lands in the models
folder, then swaps both in between turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from bot.teach import requests

log = logging.getLogger(__name__)
TRAIN_TIMEOUT_S = 1800
POLL_S = 2.0  # how often the retrain job looks for requests another process recorded
LEASE = "retrain"


class Stopped(Exception):
    """The training was stopped (the process stops, or lost its lease): the request stays."""


class Teacher:
    """Where a fan line's content and models live, and its retraining."""

    def __init__(
        self,
        project_dir: Path,
        *,
        model_dir: Path | None = None,
        pipeline: str | None = None,
        db: Any = None,  # bot.storage.Database: the requests, labelled fan texts for the threshold
        actions: set[str] | None = None,  # known custom actions, for validation (None: unchecked)
        max_segments: int = 3,
        autotrain: bool = True,  # False: edits only schedule nothing (`fanline teach --no-train`)
        holder: str | None = None,  # this process in the leases (bot.leases.holder_id)
        lease_ttl_s: float = 10.0,
    ):
        from bot.leases import holder_id

        self.project_dir = Path(project_dir)
        self.model_dir = Path(model_dir) if model_dir else self.project_dir / "models"
        self.pipeline = pipeline
        self.db = db
        self.actions = actions
        self.max_segments = max_segments
        self.autotrain = autotrain
        self.holder = holder or holder_id()
        self.lease_ttl_s = lease_ttl_s
        self.command = [sys.executable, "-m", "bot.teach.retrain"]
        self.training = False  # a training runs in this process now
        self._wake: asyncio.Event | None = None
        self._last_request: int | None = None

    @classmethod
    def for_runtime(cls, runtime: Any, *, holder: str | None = None) -> Teacher:
        """The teacher of a running fan line (`bot.runtime.Runtime`)."""
        settings = runtime.settings
        return cls(
            settings.project_dir, model_dir=settings.model_dir, pipeline=settings.nlu_pipeline,
            db=runtime.store.db, actions=runtime.actions.known_actions() or None,
            max_segments=settings.max_segments, holder=holder,
            lease_ttl_s=settings.lease_ttl_s,
        )  # fmt: skip

    async def request(self, agent_id: int = 0) -> int | None:
        """Record a retrain request (none with `autotrain` off); its id. The process holding the
        `retrain` lease trains it: this one, if it runs the job, is woken at once."""
        if not self.autotrain:
            return None
        request_id = await self.db.run(requests.add, agent_id)
        self._last_request = request_id
        if self._wake is not None:
            self._wake.set()
        log.info("retrain requested (request %d)", request_id)
        return request_id

    async def run(self, stop: asyncio.Event) -> None:
        """The `retrain` singleton job: train pending requests until `stop`."""
        self._wake = asyncio.Event()
        # the lease is ours: a training its previous holder left (killed) is to be done again
        if left := await self.db.run(requests.requeue):
            log.warning(
                "%d retrain request(s) left unfinished by another process: retraining", left
            )
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.train_pending(stop)
            except Stopped:
                return
            except Exception:  # the database may be back next time
                log.exception("retrain job failed; trying again")
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            _, pending = await asyncio.wait(waiters, timeout=POLL_S, return_when="FIRST_COMPLETED")
            for w in pending:
                w.cancel()

    async def train_pending(
        self, stop: asyncio.Event | None = None, holder: str | None = None
    ) -> int:
        """Train for every pending request, until none is left; how many trainings ran."""
        holder = holder or self.holder
        runs = 0
        while ids := await self.db.run(requests.claim, holder):
            runs += 1
            await self._train_for(ids, stop, holder)
        return runs

    async def _train_for(self, ids: list[int], stop: asyncio.Event | None, holder: str) -> None:
        from bot.teach.service import training_traffic_of

        self.training = True
        try:
            traffic = await training_traffic_of(self.db)
            model_dir, threshold = await self._train(traffic, stop)
        except Stopped:
            await self.db.run(requests.requeue, holder)
            log.info("retraining stopped; request(s) %s left for the next holder", ids)
            raise
        except Exception as exc:  # reported on the request; every process keeps its model
            error = f"{type(exc).__name__}: {exc}"
            await self.db.run(requests.fail, ids, error)
            log.error("retraining failed (%s)", type(exc).__name__)
            return
        finally:
            self.training = False
        await self.db.run(requests.finish, ids, model_dir.name, threshold)
        log.info(
            "retrained: model %s, threshold %.3f (requests %s)", model_dir.name, threshold, ids
        )

    async def _train(self, traffic: Any, stop: asyncio.Event | None) -> tuple[Path, float]:
        """Train in a child process (`bot.teach.retrain`); killed when `stop` is set."""
        job = {"project_dir": str(self.project_dir), "model_dir": str(self.model_dir),
               "pipeline": self.pipeline, "watch_parent": True,
               "traffic": None if traffic is None else [[t.text, t.intent] for t in traffic]}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.project_dir,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        out = asyncio.ensure_future(proc.stdout.read())
        err = asyncio.ensure_future(proc.stderr.read())
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            # the pipe stays open: the child exits when it closes (this process stopped or died)
            proc.stdin.write(json.dumps(job).encode() + b"\n")
            await proc.stdin.drain()
            waiters = {asyncio.ensure_future(proc.wait())} | ({stopped} if stopped else set())
            done, _ = await asyncio.wait(waiters, timeout=TRAIN_TIMEOUT_S,
                                         return_when="FIRST_COMPLETED")  # fmt: skip
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
                if stopped is not None and stopped in done:
                    raise Stopped()
                raise RuntimeError(f"training took longer than {TRAIN_TIMEOUT_S} s")
        except BaseException:
            out.cancel()
            err.cancel()
            raise
        finally:
            if stopped is not None:
                stopped.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            with contextlib.suppress(Exception):
                proc.stdin.close()
        stdout, stderr = (await out).decode(), (await err).decode()
        if proc.returncode != 0:  # the child's last line names the error (content, not fans)
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"training failed: {last[:300]}")
        result = json.loads(stdout.strip().splitlines()[-1])
        return Path(result["model_dir"]), float(result["threshold"])

    async def wait(self, request_id: int | None = None, *, poll_s: float = 0.2) -> dict[str, Any]:
        """See a request (default: this teacher's last one) through; the state after.

        While another process holds the `retrain` lease (a worker, a running server), that one
        trains it and this waits; when none does (`fanline teach` with no server running), this
        process takes the lease and trains here."""
        from bot.leases import Singleton, holder_id

        request_id = request_id or self._last_request
        if request_id is None or self.db is None:
            return await self.state(request_id)
        stop = asyncio.Event()
        me = holder_id()  # never this process's retrain job's holder: that one trains it itself

        async def once(job_stop: asyncio.Event) -> None:
            await self.db.run(requests.requeue)
            with contextlib.suppress(Stopped):
                await self.train_pending(job_stop, me)

        lease = Singleton(self.db, LEASE, once, holder=me, ttl_s=self.lease_ttl_s)
        here = asyncio.ensure_future(lease.run(stop))
        try:
            while await self.db.run(requests.open_count, request_id):
                if here.done():  # the lease's loop ended on its own: an error
                    here.result()
                await asyncio.wait({here}, timeout=poll_s)
        finally:
            stop.set()
            await asyncio.gather(here, return_exceptions=True)
        return await self.state(request_id)

    async def state(self, request_id: int | None = None) -> dict[str, Any]:
        """The request's (default: this teacher's last, else the newest) state:
        training, last_model, last_error, last_threshold, last_seconds, status."""
        row = None
        if self.db is not None:
            request_id = request_id or self._last_request
            row = await self.db.run(requests.get, request_id) if request_id else None
            if row is None and request_id is None:
                row = await self.db.run(requests.latest)
        if row is None:
            return {"training": False, "status": None, "last_model": None, "last_error": None,
                    "last_threshold": None, "last_seconds": None}  # fmt: skip
        seconds = None
        if row["finished_at"] is not None and row["started_at"] is not None:
            seconds = round(row["finished_at"] - row["started_at"], 2)
        return {"training": row["status"] in ("pending", "training"), "status": row["status"],
                "last_model": row["model"], "last_error": row["error"],
                "last_threshold": row["threshold"], "last_seconds": seconds}  # fmt: skip
