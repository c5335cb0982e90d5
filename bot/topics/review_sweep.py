"""The answer sweep: broadcast replies the bot answered, grouped for an agent's review.

Off the inbound path, beside the topic sweep and at its cadence (`fanline.topics: every_s`):
one per server process. Each pass:

  1. inbound texts within a broadcast's reply window (`messages.broadcast_id`) whose turn the
     bot answered alone (an `utter` event; no hand-off, no opt-out, no carrier keyword) and that
     no group holds yet
     are read with their turn's events; the responses the bot gave are the group's first key;
  2. they are turned into vectors by the topic sweep's vectoriser (`vectors.py`: the NLU's
     sentence encoder, or hashed n-grams), outside any transaction;
  3. each joins the nearest open (or marked right) group that got the same response within
     `join_similarity`; the rest are grouped among themselves per response (`grouping.py`);
     written in one transaction (on PostgreSQL under an advisory lock: one sweep at a time);
  4. groups whose texts changed are labelled again (c-TF-IDF, as topics are).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bot.settings import TopicSettings
from bot.storage import Database
from bot.storage import review_store as sql
from bot.storage.db import Connection
from bot.topics import grouping
from bot.topics.vectors import Vectoriser, from_bytes, to_bytes

log = logging.getLogger(__name__)
BATCH = 5_000  # new texts per pass
LABEL_TEXTS = 200
MAX_RESPONSE = 255
# a turn that opted the fan out is not an answer to review: a correction could not reach them
CONSENT_KINDS = ("opt_out",)


@dataclass(frozen=True, slots=True)
class AnswerSweepResult:
    new: int = 0  # texts taken into groups
    joined: int = 0  # of them, joined an existing group
    created: int = 0  # groups made
    skipped: int = 0  # answered texts not for review (consent changed, nothing said)

    def __add__(self, o: AnswerSweepResult) -> AnswerSweepResult:
        return AnswerSweepResult(self.new + o.new, self.joined + o.joined,
                                 self.created + o.created, self.skipped + o.skipped)  # fmt: skip

    def to_json(self) -> dict[str, int]:
        return {"new": self.new, "joined": self.joined, "created": self.created,
                "skipped": self.skipped}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Answered:
    """What the bot did with one fan text: its responses (the group key), intent, confidence."""

    response: str
    intent: str | None
    confidence: float | None


def answered(turn: list[tuple[str, Any]]) -> Answered | None:
    """Pure: the turn's answer, or None when it is not one to review (a hand-off, a held or
    ignored text, an opt-out, a keyword, nothing said). HELP, START and "Reply STOP?" decided
    by the phrase model are answers like any other: the agent sees what they answered."""
    names: list[str] = []
    intent, confidence = None, None
    for kind, data in turn:
        if kind in sql.NOT_ANSWERED:
            return None
        if kind == "compliance" and (data.get("kind") in CONSENT_KINDS or "score" not in data):
            return None  # an opt-out, or a carrier keyword (STOP, HELP, START): answered by rule
        if kind == "utter" and data.get("response"):
            names.append(str(data["response"]))
        if kind == "intent" and intent is None:
            intent, confidence = data.get("intent"), data.get("confidence")
    if not names:
        return None
    response = " + ".join(dict.fromkeys(names))[:MAX_RESPONSE]
    return Answered(response, intent, float(confidence) if confidence is not None else None)


class AnswerSweep:
    def __init__(
        self,
        db: Database,
        vectoriser_provider: Callable[[], Vectoriser],
        settings: TopicSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db, self.vectoriser_provider = db, vectoriser_provider
        self.settings = settings or TopicSettings()
        self.clock = clock

    def thresholds(self, vectoriser: Vectoriser) -> tuple[float, float]:
        s = self.settings
        join = s.join_similarity if s.join_similarity is not None else vectoriser.join_similarity
        dist = s.group_distance if s.group_distance is not None else vectoriser.group_distance
        return join, dist

    async def run_once(self) -> AnswerSweepResult:
        total = AnswerSweepResult()
        while True:
            result, full = await self._group_new()
            total += result
            if not full:
                break
        await self._relabel()
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # a background task's top: log, keep sweeping
                log.exception("answer sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.every_s)

    async def _group_new(self) -> tuple[AnswerSweepResult, bool]:
        rows = await self.db.run(sql.new_answered, BATCH)
        if not rows:
            return AnswerSweepResult(), False
        turns = await self.db.run(sql.turn_events, [r["id"] for r in rows])
        for r in rows:
            r["answer"] = answered(turns.get(r["id"], []))
        kept = [r for r in rows if r["answer"] is not None]
        vectoriser = self.vectoriser_provider()
        join_at, distance = self.thresholds(vectoriser)
        vectors = await asyncio.to_thread(vectoriser.encode, [r["body"] or "" for r in kept])
        groups = await self.db.run(sql.joinable_centroids, vectoriser.kind)
        plan = await asyncio.to_thread(plan_groups, kept, vectors, groups, join_at, distance)
        result = await self.db.run(self._apply, rows, kept, vectors, plan, vectoriser.kind,
                                   self.clock())  # fmt: skip
        return result, len(rows) == BATCH

    def _apply(
        self, conn: Connection, rows: list[dict[str, Any]], kept: list[dict[str, Any]],
        vectors: np.ndarray, plan: Plan, kind: str, at: datetime,
    ) -> AnswerSweepResult:  # fmt: skip
        if not sql.try_sweep_lock(conn):
            return AnswerSweepResult()  # another process is sweeping: it takes these texts
        taken = sql.existing(conn, [r["id"] for r in rows])
        skipped = [_text(r, None, None, None, at) for r in rows
                   if r["answer"] is None and r["id"] not in taken]  # fmt: skip
        current = sql.group_rows(conn, {gid for gid, _ in plan.joins.values()}, lock=True)
        texts: list[dict[str, Any]] = []
        joined: dict[int, list[int]] = defaultdict(list)
        spill: list[list[int]] = []
        for i, (gid, _) in plan.joins.items():
            if kept[i]["id"] in taken:
                continue
            if current.get(gid, {}).get("status") in ("open", "right"):
                joined[gid].append(i)
            else:  # corrected or taught meanwhile: the text starts a group of its own
                spill.append([i])
        for gid, idx in joined.items():
            row = current[gid]
            centre = grouping.running_mean(from_bytes(row["centroid"]), row["size"], vectors[idx])
            sql.update_group(conn, gid, centroid=to_bytes(centre), size=row["size"] + len(idx),
                             updated_at=at, label="")  # fmt: skip
            # a text joining a group marked right is reviewed already: the answer is right
            done = at if row["status"] == "right" else None
            texts += [_text(kept[i], gid, vectors[i], plan.joins[i][1], done) for i in idx]
        created = 0
        for idx in [*plan.groups, *spill]:
            idx = [i for i in idx if kept[i]["id"] not in taken]
            if not idx:
                continue
            centre = grouping.centroid(vectors[idx])
            first = kept[idx[0]]["answer"]
            intents = Counter(kept[i]["answer"].intent for i in idx if kept[i]["answer"].intent)
            broadcasts = Counter(kept[i]["broadcast_id"] for i in idx)
            gid = sql.create_group(
                conn, response=first.response, centroid=to_bytes(centre), vector_kind=kind,
                size=len(idx), created_at=at, broadcast_id=broadcasts.most_common(1)[0][0],
                intent=intents.most_common(1)[0][0] if intents else None,
            )  # fmt: skip
            created += 1
            sims = vectors[idx] @ centre
            texts += [_text(kept[i], gid, vectors[i], float(s), None)
                      for i, s in zip(idx, sims, strict=True)]  # fmt: skip
        sql.insert_texts(conn, texts + skipped)
        return AnswerSweepResult(new=len(texts), joined=sum(map(len, joined.values())),
                                 created=created, skipped=len(skipped))  # fmt: skip

    async def _relabel(self) -> None:
        ids = await self.db.run(sql.unlabelled)
        if not ids:
            return
        texts = await self.db.run(sql.label_texts, ids, LABEL_TEXTS)
        labels = await asyncio.to_thread(grouping.labels, texts)
        # a group whose texts are all stop words still gets a label: its most central text
        labels = {k: v or _short(texts.get(k, [""])[0]) for k, v in labels.items()}
        await self.db.run(sql.set_labels, labels)


@dataclass(frozen=True, slots=True)
class Plan:
    joins: dict[int, tuple[int, float]]  # text index -> (group id, similarity)
    groups: list[list[int]]  # new groups: text indices


def plan_groups(
    rows: list[dict[str, Any]], vectors: np.ndarray, groups: list[dict[str, Any]],
    join_at: float, distance: float,
) -> Plan:  # fmt: skip
    """Pure: per response the bot gave, which texts join which group, how the others group."""
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    by_response: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_response[r["answer"].response].append(i)
    joins: dict[int, tuple[int, float]] = {}
    new: list[list[int]] = []
    for response, idx in by_response.items():
        usable = [t for t in groups if t["response"] == response and t["centroid"] is not None
                  and len(t["centroid"]) == 4 * dim]  # fmt: skip
        centroids = (np.stack([from_bytes(t["centroid"]) for t in usable])
                     if usable else np.zeros((0, dim), np.float32))  # fmt: skip
        nearest, sims = grouping.join(vectors[idx], centroids, join_at)
        rest = []
        for j, (k, s) in enumerate(zip(nearest, sims, strict=True)):
            if k >= 0:
                joins[idx[j]] = (usable[k]["id"], float(s))
            else:
                rest.append(idx[j])
        if rest:
            members: dict[int, list[int]] = defaultdict(list)
            labels = grouping.group(vectors[rest], distance, min_similarity=join_at)
            for i, label in zip(rest, labels, strict=True):
                members[int(label)].append(i)
            new += list(members.values())
    return Plan(joins, new)


def _text(
    row: dict[str, Any], group_id: int | None, vector: np.ndarray | None,
    similarity: float | None, done_at: datetime | None,
) -> dict[str, Any]:  # fmt: skip
    answer: Answered | None = row["answer"]
    return {"message_id": row["id"], "group_id": group_id, "contact_id": row["contact_id"],
            "broadcast_id": row["broadcast_id"],
            "response": answer.response if answer else "",
            "intent": answer.intent if answer else None,
            "confidence": answer.confidence if answer else None,
            "vector": to_bytes(vector) if vector is not None else None,
            "similarity": round(similarity, 4) if similarity is not None else None,
            "placed_by": None, "created_at": row["created_at"],
            "done_at": done_at if group_id is not None else row["created_at"]}  # fmt: skip


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 60 else flat[:59] + "…"
