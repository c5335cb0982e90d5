"""One send rate per sending number, shared by every process on the database (issue 17, item 2).

A GCRA row per sender key (a number, a Messaging Service SID, or "" for the default sender):
`tat` is the theoretical arrival time, in the DATABASE's clock (so machines with skewed clocks
agree). A grant of `w` segments moves it to max(tat, now) + w / rate in ONE `UPDATE ...
RETURNING`, which locks the row: concurrent senders queue on it and each gets its own slot.
The grant may go at max(now, tat_new - (w - 1 + burst) / rate), so by any time t the texts
granted are at most burst + rate * (t - first grant) segments (plus the rest of the last
text's segments), whatever the number of processes.

Daily caps are counted in the same statement (messages per UTC day, the database's day), and
20429 / 30022 from Twilio lower the rate (`slow_down`): the factor halves per error (down to
1/16) and returns to 1 once no such error came for `hold_s`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.pacing import SLOW_CODES, SLOW_HOLD_S

__all__ = ["SLOW_CODES", "SLOW_HOLD_S", "Grant", "give_back", "slow_down", "states", "take"]

NO_CAP = 2**31 - 1
MIN_FACTOR = 1 / 16


@dataclass(frozen=True, slots=True)
class Grant:
    ok: bool  # False: the daily cap is reached (nothing was taken)
    wait: float  # seconds from now until the grant may be used
    now: float  # the database's clock (epoch seconds) when it was granted
    rate: float  # segments per second in force (lowered while slowed down)
    today: int  # messages counted today, this one included
    tomorrow_s: float = 0.0  # seconds until the next UTC day (when a refused cap opens again)


def _sql(dialect: str) -> dict[str, str]:
    if dialect == "postgresql":
        now = "extract(epoch from clock_timestamp())::float8"
        day = "to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD')"
        greatest = "GREATEST"
    else:  # SQLite: julianday('now') is fixed for one statement, to the millisecond
        now = "((julianday('now') - 2440587.5) * 86400.0)"
        day = "date('now')"
        greatest = "max"
    return {"now": now, "day": day, "max": greatest}


def _statements(dialect: str) -> dict[str, sa.TextClause]:
    q = _sql(dialect)
    today = f"(CASE WHEN day = {q['day']} THEN day_count ELSE 0 END)"
    ok = f"({today} + 1 <= :cap)"
    factor = f"(CASE WHEN slow_until > {q['now']} THEN slow_factor ELSE 1.0 END)"
    rate = f"(:rate * {factor})"
    # PostgreSQL's clock_timestamp() moves within a statement: one value per statement via a CTE.
    # The grant's commit does not wait for the disk (synchronous_commit off, this transaction
    # only): the row lock is held until commit, so an fsync per grant would cap a number at
    # one grant per fsync; a crash loses at most the last grants' slots (a short burst)
    if dialect == "postgresql":
        today = today.replace(q["day"], "c.cday").replace(q["now"], "c.cnow")
        ok = f"({today} + 1 <= :cap)"
        factor = factor.replace(q["now"], "c.cnow")
        rate = f"(:rate * {factor})"
        take = f"""
            WITH c AS (SELECT {q["now"]} AS cnow, {q["day"]} AS cday)
            UPDATE send_rates SET
              tat = CASE WHEN {ok} THEN GREATEST(tat, c.cnow) + :w / {rate} ELSE tat END,
              day_count = {today} + CASE WHEN {ok} THEN 1 ELSE 0 END,
              day = c.cday,
              last_ok = CASE WHEN {ok} THEN 1 ELSE 0 END,
              slow_factor = {factor}
            FROM c, (SELECT set_config('synchronous_commit', 'off', true)) AS nowait
            WHERE key = :key
            RETURNING tat, c.cnow AS now, slow_factor, day_count, last_ok"""
        slow = """
            WITH c AS (SELECT extract(epoch from clock_timestamp())::float8 AS cnow)
            UPDATE send_rates SET
              slow_factor = GREATEST(:min_factor,
                (CASE WHEN slow_until > c.cnow THEN slow_factor ELSE 1.0 END) * 0.5),
              slow_until = c.cnow + :hold,
              tat = GREATEST(tat, c.cnow + :pause)
            FROM c WHERE key = :key"""
        clock = f"SELECT {q['now']}, {q['day']}"
    else:
        take = f"""
            UPDATE send_rates SET
              tat = CASE WHEN {ok} THEN max(tat, {q["now"]}) + :w / {rate} ELSE tat END,
              day_count = {today} + CASE WHEN {ok} THEN 1 ELSE 0 END,
              day = {q["day"]},
              last_ok = CASE WHEN {ok} THEN 1 ELSE 0 END,
              slow_factor = {factor}
            WHERE key = :key
            RETURNING tat, {q["now"]} AS now, slow_factor, day_count, last_ok"""
        slow = f"""
            UPDATE send_rates SET
              slow_factor = max(:min_factor,
                (CASE WHEN slow_until > {q["now"]} THEN slow_factor ELSE 1.0 END) * 0.5),
              slow_until = {q["now"]} + :hold,
              tat = max(tat, {q["now"]} + :pause)
            WHERE key = :key"""
        clock = f"SELECT {q['now']}, {q['day']}"
    return {
        "take": sa.text(take),
        "slow": sa.text(slow),
        # a grant not used (its row was not claimed): its slot and its count go back
        "give_back": sa.text(
            "UPDATE send_rates SET tat = tat - :w / :rate, "
            "day_count = CASE WHEN day_count > 0 THEN day_count - 1 ELSE 0 END WHERE key = :key"
        ),
        "create": sa.text(
            "INSERT INTO send_rates (key, tat, slow_factor, slow_until, day, day_count, last_ok) "
            "VALUES (:key, 0, 1.0, 0, '', 0, 0) ON CONFLICT (key) DO NOTHING"
        ),
        "clock": sa.text(clock),
        "all": sa.text(
            "SELECT key, tat, slow_factor, slow_until, day, day_count FROM send_rates ORDER BY key"
        ),
    }


_CACHE: dict[str, dict[str, sa.TextClause]] = {}


def statements(conn: Connection) -> dict[str, sa.TextClause]:
    dialect = conn.dialect.name
    if dialect not in _CACHE:
        _CACHE[dialect] = _statements(dialect)
    return _CACHE[dialect]


def take(
    conn: Connection, key: str, weight: float, rate: float, burst: float, cap: int | None
) -> Grant:
    """Take `weight` segments of `key`'s rate (one statement; the row is created on first use)."""
    q = statements(conn)
    params = {"key": key, "w": float(weight), "rate": float(rate),
              "cap": NO_CAP if cap is None else int(cap)}  # fmt: skip
    row = conn.execute(q["take"], params).first()
    if row is None:
        conn.execute(q["create"], {"key": key})
        row = conn.execute(q["take"], params).one()
    effective = rate * float(row.slow_factor)
    if not row.last_ok:
        return Grant(False, 0.0, row.now, effective, row.day_count, _to_midnight(row.now))
    # the grant's slot starts w / rate before the new tat; the burst lets it start earlier
    wait = max(0.0, float(row.tat) - (weight - 1 + burst) / effective - float(row.now))
    return Grant(True, wait, float(row.now), effective, int(row.day_count))


def give_back(conn: Connection, key: str, weight: float, rate: float) -> None:
    conn.execute(statements(conn)["give_back"], {"key": key, "w": float(weight), "rate": rate})


def slow_down(conn: Connection, key: str, pause_s: float, hold_s: float) -> None:
    """Halve `key`'s rate for `hold_s` from now and send nothing from it for `pause_s`."""
    q = statements(conn)
    params = {"key": key, "pause": pause_s, "hold": hold_s, "min_factor": MIN_FACTOR}
    if conn.execute(q["slow"], params).rowcount == 0:
        conn.execute(q["create"], {"key": key})
        conn.execute(q["slow"], params)


def states(conn: Connection) -> tuple[float, str, list[dict[str, Any]]]:
    """The database's clock and day, and every sender's row (for `fanline outbox status`)."""
    q = statements(conn)
    now, day = conn.execute(q["clock"]).one()
    rows = [dict(r._mapping) for r in conn.execute(q["all"])]
    return float(now), str(day), rows


def _to_midnight(now: float) -> float:
    return 86400.0 - (float(now) % 86400.0)
