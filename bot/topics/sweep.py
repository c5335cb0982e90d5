"""The topic sweep: new waiting texts into topics, answered texts done, labels, auto-replies.

Off the inbound path, beside the human queue: one per server process, woken after a turn that
handed off (`notify`), and every `every_s` seconds (docs/architecture.md, "Topics"). Each pass:

  1. texts that carry an unresolved escalation and no topic yet are read and turned into
     vectors (`vectors.py`, outside any transaction: the encoder takes CPU, not the database);
  2. each joins the nearest open topic of the same vector kind within `join_similarity`, the
     rest are grouped among themselves into new topics (`grouping.py`, in a worker thread);
     written in one transaction (on PostgreSQL under an advisory lock: one sweep at a time);
  3. texts whose escalation was resolved get `done_at`; topics with none left are answered;
     labels are made again where texts changed (c-TF-IDF), broadcasts answered refreshed;
  4. topics with a running auto-reply answer their new texts as a reply does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from bot.audience.quiet_hours import QuietHours
from bot.settings import TopicSettings
from bot.storage import Database
from bot.storage import topic_store as sql
from bot.storage.db import Connection
from bot.topics import grouping
from bot.topics.vectors import Vectoriser, from_bytes, to_bytes

log = logging.getLogger(__name__)
BATCH = 5_000  # new texts per pass (a storm is caught up pass after pass)
LABEL_TEXTS = 200  # texts per topic a label is made from


@dataclass(frozen=True, slots=True)
class SweepResult:
    new: int = 0  # texts taken into topics
    joined: int = 0  # of them, joined an existing topic
    created: int = 0  # topics made
    done: int = 0  # texts found answered
    auto_answered: int = 0  # fans answered by an auto-reply
    outbox_ids: tuple[int, ...] = field(default=(), compare=False)

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(self.new + other.new, self.joined + other.joined,
                           self.created + other.created, self.done + other.done,
                           self.auto_answered + other.auto_answered,
                           self.outbox_ids + other.outbox_ids)  # fmt: skip

    def to_json(self) -> dict[str, int]:
        return {"new": self.new, "joined": self.joined, "created": self.created,
                "done": self.done, "auto_answered": self.auto_answered}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a pass decided, before it is written: per text, a topic id or a new group."""

    rows: list[dict[str, Any]]
    vectors: np.ndarray
    joins: dict[int, tuple[int, float]]  # row index -> (topic id, similarity)
    groups: dict[int, list[int]]  # new group -> row indices


class TopicSweep:
    def __init__(
        self,
        db: Database,
        vectoriser_provider: Callable[[], Vectoriser],
        settings: TopicSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        quiet: QuietHours | None = None,
        on_sent: Callable[[SweepResult], None] = lambda result: None,
    ):
        self.db, self.vectoriser_provider = db, vectoriser_provider
        self.settings = settings or TopicSettings()
        self.clock = clock
        self.quiet = quiet if quiet is not None else QuietHours()
        self.on_sent = on_sent  # after commit, when auto-replies queued texts: wake the sender
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A turn handed off (a text opened or joined an escalation): sweep soon."""
        self._wake.set()

    def thresholds(self, vectoriser: Vectoriser) -> tuple[float, float]:
        s = self.settings
        join = s.join_similarity if s.join_similarity is not None else vectoriser.join_similarity
        dist = s.group_distance if s.group_distance is not None else vectoriser.group_distance
        return join, dist

    async def run_once(self) -> SweepResult:
        """One full pass (several batches while a storm's backlog lasts)."""
        total = SweepResult()
        while True:
            result, full = await self._group_new()
            total += result
            if not full:
                break
        total += await self._finish_pass()
        if total.outbox_ids:
            self.on_sent(total)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            self._wake.clear()  # before the pass: a hand-off committed during it wakes the next
            try:
                await self.run_once()
            except Exception:  # a background task's top: log, keep sweeping
                log.exception("topic sweep failed")
            # a storm wakes us constantly: at least `wake_gap_s` between passes
            gap = self.settings.wake_gap_s - (loop.time() - started)
            if gap > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), gap)
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=self.settings.every_s,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
            waiter.cancel()
            stopper.cancel()

    # ---- 1-2: new texts into topics ------------------------------------------------------

    async def _group_new(self) -> tuple[SweepResult, bool]:
        rows = await self.db.run(sql.new_waiting_texts, BATCH)
        if not rows:
            return SweepResult(), False
        vectoriser = self.vectoriser_provider()
        join_at, distance = self.thresholds(vectoriser)
        vectors = await asyncio.to_thread(vectoriser.encode, [r["body"] or "" for r in rows])
        topics = await self.db.run(sql.open_centroids, vectoriser.kind)
        plan = await asyncio.to_thread(_plan, rows, vectors, topics, join_at, distance)
        result = await self.db.run(self._apply, plan, vectoriser.kind, self.clock())
        return result, len(rows) == BATCH

    def _apply(self, conn: Connection, plan: _Plan, kind: str, at: datetime) -> SweepResult:
        if not sql.try_sweep_lock(conn):
            return SweepResult()  # another process is sweeping: it takes these texts
        taken = sql.existing_texts(conn, [r["id"] for r in plan.rows])
        current = sql.topic_rows(conn, {t for t, _ in plan.joins.values()}, lock=True)
        joined: dict[int, list[int]] = defaultdict(list)
        groups = {
            g: [i for i in idx if plan.rows[i]["id"] not in taken] for g, idx in plan.groups.items()
        }
        spill = max(groups, default=-1) + 1
        for i, (topic_id, _) in plan.joins.items():
            if plan.rows[i]["id"] in taken:
                continue
            if current.get(topic_id, {}).get("status") == "open":
                joined[topic_id].append(i)
            else:  # answered or merged meanwhile: the text starts a topic of its own
                groups[spill] = [i]
                spill += 1
        texts: list[dict[str, Any]] = []
        for topic_id, idx in joined.items():
            row = current[topic_id]
            added = plan.vectors[idx]
            centre = grouping.running_mean(from_bytes(row["centroid"]), row["size"], added)
            sql.update_topic(conn, topic_id, centroid=to_bytes(centre),
                             size=row["size"] + len(idx), updated_at=at,
                             label="" if not row["label_pinned"] else row["label"])  # fmt: skip
            texts += [_text(plan.rows[i], topic_id, plan.vectors[i], plan.joins[i][1]) for i in idx]
        created = 0
        for idx in groups.values():
            if not idx:
                continue
            centre = grouping.centroid(plan.vectors[idx])
            broadcasts = Counter(
                plan.rows[i]["broadcast_id"] for i in idx if plan.rows[i]["broadcast_id"]
            )
            topic_id = sql.create_topic(
                conn, centroid=to_bytes(centre), vector_kind=kind, size=len(idx), created_at=at,
                broadcast_id=broadcasts.most_common(1)[0][0] if broadcasts else None,
            )  # fmt: skip
            created += 1
            sims = plan.vectors[idx] @ centre
            texts += [
                _text(plan.rows[i], topic_id, plan.vectors[i], float(s))
                for i, s in zip(idx, sims, strict=True)
            ]
        sql.insert_texts(conn, texts)
        sql.refresh_broadcasts(conn, joined)
        return SweepResult(new=len(texts), joined=sum(map(len, joined.values())), created=created)

    # ---- 3-4: done texts, labels, auto-replies ---------------------------------------------

    async def _finish_pass(self) -> SweepResult:
        at = self.clock()
        done = await self.db.run(self._done, at)
        auto = await self._auto_replies(at)
        await self._relabel()
        return SweepResult(done=done) + auto

    def _done(self, conn: Connection, at: datetime) -> int:
        count, touched = sql.mark_done(conn, at)
        sql.close_answered(conn, touched | set(sql.expired_auto_topics(conn, at)), at)
        return count

    async def _auto_replies(self, at: datetime) -> SweepResult:
        from bot.topics import service  # the reply's own chunks: one transaction each

        total = SweepResult()
        for t in await self.db.run(sql.active_auto_topics, at):
            reply = await self.db.run(sql.reply_row, t["auto_reply_id"])
            if reply is None:
                continue
            until = (
                t["auto_until"] if t["auto_until"].tzinfo else t["auto_until"].replace(tzinfo=UTC)
            )
            result = await service.answer_topic(
                self.db, t["id"], reply["id"], reply["agent_id"], service.template(reply["body"]),
                auto=True, quiet=self.quiet, at=at, arrived_by=until,
            )  # fmt: skip
            total += SweepResult(auto_answered=len(result.outbox_ids), outbox_ids=result.outbox_ids)
        return total

    async def _relabel(self) -> None:
        if not await self.db.run(sql.unlabelled_topics):
            return
        texts = await self.db.run(sql.label_texts, LABEL_TEXTS)
        labels = await asyncio.to_thread(grouping.labels, texts)
        await self.db.run(sql.set_labels, labels)

    # ---- re-grouping ---------------------------------------------------------------------

    async def regroup(self) -> SweepResult:
        """Group every waiting text of the open topics again from its stored vector (texts an
        agent placed stay put); topics keep their ids where most of their texts stay."""
        vectoriser = self.vectoriser_provider()
        join_at, distance = self.thresholds(vectoriser)
        rows = await self.db.run(sql.regroupable_texts)
        stale = [r for r in rows if _vector(r, vectoriser) is None]
        if stale:  # stored by another encoder (the model changed): made again
            fresh = await asyncio.to_thread(vectoriser.encode, [r["body"] or "" for r in stale])
            for r, v in zip(stale, fresh, strict=True):
                r["vector"] = to_bytes(v)
        if not rows:
            return SweepResult()
        vectors = np.stack([from_bytes(r["vector"]) for r in rows])
        labels = await asyncio.to_thread(
            partial(grouping.group, min_similarity=join_at), vectors, distance
        )
        return await self.db.run(self._apply_regroup, rows, vectors, labels, vectoriser.kind,
                                 self.clock())  # fmt: skip

    def _apply_regroup(
        self, conn: Connection, rows: list[dict[str, Any]], vectors: np.ndarray,
        labels: np.ndarray, kind: str, at: datetime,
    ) -> SweepResult:  # fmt: skip
        members: dict[int, list[int]] = defaultdict(list)
        for i, g in enumerate(labels):
            members[int(g)].append(i)
        kept: set[int] = set()
        created, placed = 0, []
        old = {r["topic_id"] for r in rows if r["topic_id"] is not None}
        pinned = sql.pinned_topics(conn)
        for idx in members.values():
            votes = Counter(rows[i]["topic_id"] for i in idx if rows[i]["topic_id"] is not None)
            keep = next((t for t, _ in votes.most_common() if t not in kept), None)
            centre = grouping.centroid(vectors[idx])
            if keep is None:
                keep = sql.create_topic(conn, vector_kind=kind, created_at=at,
                                        centroid=to_bytes(centre))  # fmt: skip
                created += 1
            else:
                sql.update_topic(conn, keep, centroid=to_bytes(centre), vector_kind=kind,
                                 updated_at=at)  # fmt: skip
            kept.add(keep)
            sims = vectors[idx] @ centre
            placed += [{"message_id": rows[i]["message_id"], "topic_id": keep,
                        "vector": rows[i]["vector"], "similarity": float(s)}
                       for i, s in zip(idx, sims, strict=True)]  # fmt: skip
        sql.place_texts(conn, placed)
        for topic_id, size in sql.sizes(conn, old | kept).items():
            values: dict[str, Any] = {"size": size}
            if size == 0:
                values.update(status="merged", auto_reply_id=None, auto_until=None)
            if topic_id not in pinned:
                values["label"] = ""
            sql.update_topic(conn, topic_id, **values)
        return SweepResult(new=len(rows), created=created)


def _plan(
    rows: list[dict[str, Any]], vectors: np.ndarray, topics: list[dict[str, Any]],
    join_at: float, distance: float,
) -> _Plan:  # fmt: skip
    """Pure: which texts join which topic, and how the others group (a worker thread)."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    usable = [t for t in topics if t["centroid"] is not None and len(t["centroid"]) == 4 * dim]
    centroids = (np.stack([from_bytes(t["centroid"]) for t in usable])
                 if usable else np.zeros((0, dim), np.float32))  # fmt: skip
    nearest, sims = grouping.join(vectors, centroids, join_at)
    joins = {i: (usable[k]["id"], float(sims[i])) for i, k in enumerate(nearest) if k >= 0}
    rest = [i for i in range(len(rows)) if i not in joins]
    groups: dict[int, list[int]] = defaultdict(list)
    if rest:
        for i, g in zip(
            rest, grouping.group(vectors[rest], distance, min_similarity=join_at), strict=True
        ):
            groups[int(g)].append(i)
    return _Plan(rows, vectors, joins, dict(groups))


def _text(
    row: dict[str, Any], topic_id: int, vector: np.ndarray, similarity: float
) -> dict[str, Any]:
    return {"message_id": row["id"], "topic_id": topic_id, "contact_id": row["contact_id"],
            "escalation_id": row["escalation_id"], "vector": to_bytes(vector),
            "similarity": round(similarity, 4), "placed_by": None,
            "created_at": row["created_at"], "done_at": None}  # fmt: skip


def _vector(row: dict[str, Any], vectoriser: Vectoriser) -> np.ndarray | None:
    """The stored vector if it is of this vectoriser's size (else it is made again)."""
    v = from_bytes(row["vector"])
    if v is None or len(v) != vectoriser.dimensions:
        return None
    return v
