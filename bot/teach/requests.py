"""Retrain requests: what a teach leaves in the database for the worker that retrains.

A teach (the inbox or `fanline teach`) adds a `pending` row. The process holding the
`retrain` lease (`bot.leases`; a worker, or the one `all` process) claims every pending row at
once (`pending -> training`, one `UPDATE ... RETURNING`), trains once for all of them, and marks
them `done` with the model's folder name, or `failed` with the error. Rows that come while a
training runs stay pending: one more training after it, however many teaches came meanwhile.
A holder killed mid-training leaves its rows `training`; the next holder of the lease puts them
back to `pending` (the lease guarantees the previous holder's job has stopped or died) and
trains them. A request that was claimed `MAX_ATTEMPTS` times without finishing is failed.

Raw SQL on the database's clock, like `bot.leases`; the same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.leases import _now

MAX_ATTEMPTS = 3
COLUMNS = ("id", "status", "agent_id", "requested_at", "started_at", "finished_at", "holder",
           "attempts", "model", "threshold", "error")  # fmt: skip


def add(conn: Any, agent_id: int = 0) -> int:
    """A new pending request; its id."""
    return int(conn.execute(
        sa.text(f"INSERT INTO retrain_requests (status, agent_id, requested_at, attempts) "
                f"VALUES ('pending', :a, {_now(conn)}, 0) RETURNING id"),
        {"a": agent_id},
    ).scalar_one())  # fmt: skip


def claim(conn: Any, holder: str) -> list[int]:
    """Every pending request, now `training` by `holder`: one training answers them all."""
    conn.execute(
        sa.text("UPDATE retrain_requests SET status = 'failed', error = :e, "
                f"finished_at = {_now(conn)} WHERE status = 'pending' AND attempts >= :m"),
        {"e": f"training was interrupted {MAX_ATTEMPTS} times", "m": MAX_ATTEMPTS},
    )  # fmt: skip
    rows = conn.execute(
        sa.text(f"UPDATE retrain_requests SET status = 'training', holder = :h, "
                f"started_at = {_now(conn)}, attempts = attempts + 1 "
                f"WHERE status = 'pending' RETURNING id"),
        {"h": holder},
    ).scalars().all()  # fmt: skip
    return sorted(int(r) for r in rows)


def finish(conn: Any, ids: list[int], model: str, threshold: float) -> None:
    conn.execute(
        sa.text(f"UPDATE retrain_requests SET status = 'done', model = :m, threshold = :t, "
                f"error = NULL, finished_at = {_now(conn)} "
                f"WHERE status = 'training' AND id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)),
        {"m": model, "t": threshold, "ids": ids},
    )  # fmt: skip


def fail(conn: Any, ids: list[int], error: str) -> None:
    conn.execute(
        sa.text(f"UPDATE retrain_requests SET status = 'failed', error = :e, "
                f"finished_at = {_now(conn)} WHERE status = 'training' AND id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)),
        {"e": error[:1000], "ids": ids},
    )  # fmt: skip


def requeue(conn: Any, holder: str | None = None) -> int:
    """Trainings left unfinished back to pending: `holder`'s own (it stopped), or every one (a
    new holder of the lease: the previous one stopped or died); how many."""
    where = "status = 'training'" + (" AND holder = :h" if holder is not None else "")
    return int(conn.execute(
        sa.text(f"UPDATE retrain_requests SET status = 'pending', holder = NULL WHERE {where}"),
        {"h": holder},
    ).rowcount)  # fmt: skip


def get(conn: Any, request_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.text(f"SELECT {', '.join(COLUMNS)} FROM retrain_requests WHERE id = :i"),
        {"i": request_id},
    ).first()  # fmt: skip
    return None if row is None else dict(zip(COLUMNS, row, strict=True))


def latest(conn: Any) -> dict[str, Any] | None:
    """The newest request, and the model of the newest one done (`live_model` is what a
    process should be serving once it reloaded)."""
    row = conn.execute(
        sa.text(f"SELECT {', '.join(COLUMNS)} FROM retrain_requests ORDER BY id DESC LIMIT 1")
    ).first()
    if row is None:
        return None
    out = dict(zip(COLUMNS, row, strict=True))
    out["trained_model"] = conn.execute(
        sa.text("SELECT model FROM retrain_requests WHERE status = 'done' ORDER BY id DESC LIMIT 1")
    ).scalar()
    return out


def open_count(conn: Any, up_to: int | None = None) -> int:
    """Requests not finished yet (pending or training), up to id `up_to`."""
    extra = "" if up_to is None else " AND id <= :u"
    return int(conn.execute(
        sa.text("SELECT count(*) FROM retrain_requests "
                f"WHERE status IN ('pending', 'training'){extra}"),
        {"u": up_to},
    ).scalar_one())  # fmt: skip
