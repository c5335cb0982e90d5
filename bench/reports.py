"""Report queries at scale (issue 18): every query of `bot/storage/report_store.py` timed on
one million fans and ten million texts, SQLite and PostgreSQL (aim: under 1 s each).

The history is written by the database itself (INSERT ... SELECT over a recursive series on
SQLite, generate_series on PostgreSQL; nothing passes through Python), deterministic, over the
last 90 days: per fan a contact, a conversation and an opt-in (10 % opted out since); five
broadcasts to every fan (90 % delivered, 3 % failed by three error codes, 2 % skipped by the
cap, the newest an A/B test with two variants and a tracked link per fan, the one before a
link too: 10 % human clicks, 2 % previews); 5 % of fans reply within a day of each broadcast;
the rest of the texts are fans' texts and the bot's replies spread over the 90 days (1 in 12
handed to a person, 1 in 20 held); 200,000 hand-offs (70 % answered), flow events (started and
steps of 8 flows) and other events; 2,000 topics. Then ANALYZE, then each query three times
(first run and best) for the last --days days and the newest broadcasts.

    python bench/reports.py                                # both databases, full size
    python bench/reports.py --db sqlite --fans 100000 --messages 1000000   # quick
    python bench/reports.py --without-indexes              # the same without migration 0016's

PostgreSQL: FANLINE_TEST_DATABASE_URL or --database-url (a schema of its own, dropped after).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bot.audience import reports  # noqa: E402
from bot.storage import Database  # noqa: E402
from bot.storage import report_store as q  # noqa: E402
from bot.storage.db import scratch_schema  # noqa: E402
from bot.storage.tables import REPORT_INDEXES, consent_events, escalations  # noqa: E402

BROADCASTS = 5
DAY = 86400
CHUNK = 500_000


class Sql:
    """The two dialects' spelling of a series, a timestamp and a JSON object."""

    def __init__(self, dialect: str, now: datetime):
        self.pg = dialect == "postgresql"
        self.base = (now - timedelta(days=90)).strftime("%Y-%m-%d %H:%M:%S")

    def ts(self, seconds: str) -> str:
        """The history's start plus an integer expression of seconds."""
        if self.pg:
            return f"(TIMESTAMPTZ '{self.base}+00' + ({seconds}) * INTERVAL '1 second')"
        return (f"(strftime('%Y-%m-%d %H:%M:%S', '{self.base}', '+' || CAST(({seconds}) AS "
                "INTEGER) || ' seconds') || '.000000')")  # fmt: skip

    def json(self, *pairs: str) -> str:
        return ("json_build_object(" if self.pg else "json_object(") + ", ".join(pairs) + ")"

    def insert(self, table: str, columns: str, select: str, first: int, last: int) -> str:
        if self.pg:
            return (f"INSERT INTO {table} ({columns}) SELECT {select} "
                    f"FROM generate_series(CAST({first} AS BIGINT), CAST({last} AS BIGINT)) AS s(i)")  # fmt: skip
        return (f"WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s "
                f"WHERE i < {last}) INSERT INTO {table} ({columns}) SELECT {select} FROM s")  # fmt: skip


def fill(db: Database, fans: int, texts: int, now: datetime) -> dict[str, int]:
    """Write the history; returns row counts per table."""
    sql = Sql(db.engine.dialect.name, now)
    f = fans
    sent_per_broadcast = f
    replies = f // 20  # per broadcast
    rest = max(texts - BROADCASTS * (sent_per_broadcast + replies), 0) // 2
    escalations_n = max(f // 5, 1)
    starts = [15, 30, 45, 65, 80]  # broadcast k's start: days after the history's start

    def run(stmt: str, total: int, first: int = 1) -> None:
        for a in range(first, first + total, CHUNK):
            b = min(a + CHUNK - 1, first + total - 1)
            one = stmt.replace("{A}", str(a)).replace("{B}", str(b))
            one = one.replace("%", "%%") if sql.pg else one  # psycopg's placeholders
            db.run_sync(lambda c: (cache(c), c.exec_driver_sql(one)))  # noqa: B023 (run at once)

    def cache(c: Any) -> None:
        if not sql.pg:  # a bigger page cache: rows in random fan order go into large indexes
            c.exec_driver_sql("PRAGMA cache_size = -262144")

    def ins(table: str, columns: str, select: str, total: int, first: int = 1) -> None:
        t0 = time.perf_counter()
        run(sql.insert(table, columns, select, "{A}", "{B}"), total, first)  # type: ignore[arg-type]
        print(f"  {table}: +{total:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)

    ins("contacts", "id, phone, phone_hash, profile, subscription, subscribed_at, created_at",
        f"i, '+1' || (2000000000 + i), 'h' || i, '{{}}', CASE WHEN i % 10 = 0 THEN "
        f"'unsubscribed' ELSE 'subscribed' END, {sql.ts('(i % 365) * 20000')}, "
        f"{sql.ts('(i % 365) * 20000')}", f)  # fmt: skip
    ins("conversations", "id, contact_id, status, dialogue, updated_at",
        f"i, i, 'bot', '{{}}', {sql.ts('0')}", f)  # fmt: skip
    ins("consent_events", "contact_id, action, method, at",
        f"i, 'opt_in', 'sms_yes', {sql.ts('(i % 365) * 20000')}", f)  # fmt: skip
    ins("consent_events", "contact_id, action, method, at",
        f"i * 10, 'opt_out', 'sms_keyword', {sql.ts(f'(i * 7919) % {90 * DAY}')}", f // 10)  # fmt: skip
    for k, day in enumerate(starts, 1):
        start = sql.ts(str(day * DAY))
        db.run_sync(lambda c, k=k, start=start: c.exec_driver_sql(
            "INSERT INTO broadcasts (id, name, body, media_urls, segment, status, rate, "
            "quiet_start, quiet_end, default_zone, cursor, enqueued, created_at, started_at, "
            f"finished_at) VALUES ({k}, 'broadcast {k}', 'News', '[]', '{{}}', 'completed', 50, "
            f"'08:00', '21:00', 'America/New_York', 0, {f}, {start}, {start}, {start})"))  # fmt: skip
    db.run_sync(lambda c: c.exec_driver_sql(
        f"INSERT INTO broadcast_variants (id, broadcast_id, label, body, winner) VALUES "
        f"(1, {BROADCASTS}, 'A', 'News A', {sql.pg and 'false' or 0}), "
        f"(2, {BROADCASTS}, 'B', 'News B', {sql.pg and 'true' or 1})"))  # fmt: skip
    ins("broadcast_recipients", "broadcast_id, contact_id, variant_id, created_at",
        f"{BROADCASTS}, i, 1 + i % 2, {sql.ts(str(starts[-1] * DAY))}", f)  # fmt: skip
    status = ("CASE WHEN h < 900 THEN 'delivered' WHEN h < 930 THEN 'failed' WHEN h < 950 THEN "
              "'skipped' ELSE 'sent' END")  # fmt: skip
    code = "CASE WHEN h >= 900 AND h < 930 THEN 30003 + 2 * (h % 3) ELSE NULL END"
    for k, day in enumerate(starts, 1):
        at = sql.ts(f"{day * DAY} + (i * 7200) / {f}")
        hashed = f"(SELECT i, (i * 7919 + {k} * 104729) % 1000 AS h FROM s) AS s"
        if sql.pg:
            hashed = f"(SELECT i, (i * 7919 + {k} * 104729) % 1000 AS h FROM generate_series(CAST({{A}} AS BIGINT), CAST({{B}} AS BIGINT)) AS s(i)) AS s"  # noqa: E501
        stmt = (
            ("" if sql.pg else "WITH RECURSIVE s(i) AS (SELECT {A} UNION ALL SELECT i + 1 FROM s "
             "WHERE i < {B}) ")
            + "INSERT INTO messages (contact_id, direction, body, media_urls, kind, status, "
            "broadcast_id, variant_id, error_code, created_at, sent_at, attempts, private, lookups) "
            f"SELECT i, 'out', 'News', '[]', 'broadcast', {status}, {k}, "
            f"{'1 + i % 2' if k == BROADCASTS else 'NULL'}, {code}, {at}, "
            f"CASE WHEN h < 930 OR h >= 950 THEN {at} END, 1, {sql.pg and 'false' or 0}, 0 "
            f"FROM {hashed}"
        )  # fmt: skip
        t0 = time.perf_counter()
        run(stmt, f)
        print(f"  messages: +{f:,} broadcast {k} texts in {time.perf_counter() - t0:.1f} s",
              flush=True)  # fmt: skip
        # 5 % of fans reply within the day
        ins("messages", "contact_id, direction, body, media_urls, kind, status, broadcast_id, "
            "created_at, attempts, private, lookups",
            f"1 + (i * 20) % {f}, 'in', 'love it', '[]', 'sms', 'processed', {k}, "
            f"{sql.ts(f'{day * DAY} + (i * 13) % {DAY}')}, 0, {sql.pg and 'false' or 0}, 0",
            replies)  # fmt: skip
    # the rest: fans' texts (1 in 12 handed to a person, 1 in 20 held), the bot's replies
    first_in = db.run_sync(lambda c: c.exec_driver_sql("SELECT max(id) FROM messages").scalar()) + 1
    ins("messages", "id, contact_id, direction, body, media_urls, kind, status, escalation_id, "
        "created_at, attempts, private, lookups",
        f"{first_in - 1} + i, 1 + (i * 7919) % {f}, 'in', 'hi', '[]', 'sms', CASE WHEN i % 20 = 0 "
        f"THEN 'held' ELSE 'processed' END, CASE WHEN i % 12 = 0 THEN 1 + i % {escalations_n} END, "
        f"{sql.ts(f'(i * {90 * DAY}) / {rest}')}, 0, {sql.pg and 'false' or 0}, 0", rest)  # fmt: skip
    if sql.pg:  # ids written above: the sequence goes on after them
        db.run_sync(
            lambda c: c.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('messages', 'id'), (SELECT max(id) FROM messages))"
            )
        )
    ins("messages", "contact_id, direction, body, media_urls, kind, status, reply_to, created_at, "
        "attempts, private, lookups",
        f"1 + (i * 7919) % {f}, 'out', 'Hi!', '[]', 'reply', 'delivered', {first_in - 1} + i, "
        f"{sql.ts(f'(i * {90 * DAY}) / {rest} + 1')}, 1, {sql.pg and 'false' or 0}, 0", rest)  # fmt: skip
    ins("escalations", "contact_id, conversation_id, reason, priority, guesses, created_at, "
        "first_response_at",
        f"1 + (i * 7919) % {f}, 1 + (i * 7919) % {f}, 'fan_asked', 'normal', '[]', "
        f"{sql.ts(f'(i * {90 * DAY}) / {escalations_n}')}, CASE WHEN i % 10 < 7 THEN "
        f"{sql.ts(f'(i * {90 * DAY}) / {escalations_n} + 60 * (i % 120)')} END",
        escalations_n)  # fmt: skip
    flow_events = 3 * f
    # each event names the fan's text whose turn wrote it (a report's lookups by message_id
    # then see the selectivity they have on a real line)
    ins("events", "contact_id, message_id, type, flow, step, data, at",
        f"1 + (i * 7919) % {f}, {first_in} + (i * 7) % {rest}, "
        "CASE WHEN i % 3 = 0 THEN 'flow_started' ELSE 'step' END, "
        "'flow' || (i % 8), CASE WHEN i % 3 <> 0 THEN 'step' || (i % 5) END, "
        f"{sql.json(chr(39) + 'flow' + chr(39), chr(39) + 'flow' + chr(39) + ' || (i % 8)', chr(39) + 'step' + chr(39), chr(39) + 'step' + chr(39) + ' || (i % 5)')}, "  # noqa: E501
        f"{sql.ts(f'(i * {90 * DAY}) / {flow_events}')}", flow_events)  # fmt: skip
    ins("events", "contact_id, message_id, type, data, at",
        f"1 + (i * 7919) % {f}, {first_in} + i % {rest}, 'intent', {sql.json(chr(39) + 'intent' + chr(39), chr(39) + 'greet' + chr(39))}, "  # noqa: E501
        f"{sql.ts(f'(i * {90 * DAY}) / {2 * f}')}", 2 * f)  # fmt: skip
    for k in (BROADCASTS - 1, BROADCASTS):
        variant = "1 + i % 2" if k == BROADCASTS else "NULL"
        first_link = (
            db.run_sync(
                lambda c: c.exec_driver_sql("SELECT coalesce(max(id), 0) FROM links").scalar()
            )
            + 1
        )
        ins("links", "id, code, url, contact_id, broadcast_id, variant_id, created_at",
            f"{first_link - 1} + i, 'L{k}x' || i, 'https://tix.example/nova', i, {k}, {variant}, "
            f"{sql.ts(str(starts[k - 1] * DAY))}", f)  # fmt: skip
        ins("link_clicks", "link_id, contact_id, first_at, clicks, agent_kind",
            f"{first_link - 1} + i * 8, i * 8, {sql.ts(str(starts[k - 1] * DAY + 600))}, 1, "
            f"CASE WHEN i % 6 = 0 THEN 'preview' ELSE 'human' END", f // 8)  # fmt: skip
    ins("topics", "status, label, label_pinned, vector_kind, size, broadcast_id, created_at, "
        "updated_at",
        f"'open', 'topic ' || i, {sql.pg and 'false' or 0}, '', 1 + (i * 7919) % 500, NULL, "
        f"{sql.ts(f'(i * {90 * DAY}) / 2000')}, {sql.ts(f'(i * {90 * DAY}) / 2000')}", 2000)  # fmt: skip
    if sql.pg:
        for seq in ("contacts", "conversations", "broadcasts", "broadcast_variants", "messages",
                    "links"):  # fmt: skip
            db.run_sync(
                lambda c, t=seq: c.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
                )
            )
    counts = {}
    for t in ("contacts", "messages", "events", "consent_events", "escalations", "links",
              "link_clicks"):  # fmt: skip
        counts[t] = db.run_sync(
            lambda c, t=t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
        )
    return counts


def analyse(db: Database) -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        db.run_sync(lambda c: c.exec_driver_sql("ANALYZE"))


def drop_report_indexes(db: Database) -> None:
    for index in REPORT_INDEXES:
        db.run_sync(lambda c, n=index.name: c.exec_driver_sql(f"DROP INDEX {n}"))


def timed(db: Database, fn: Callable[[Any], Any], repeats: int = 3) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        db.run_sync(fn)
        times.append(time.perf_counter() - t0)
    return times[0], min(times)


def queries(days: int, now: datetime) -> Iterator[tuple[str, Callable[[Any], Any]]]:
    since, until = reports.period(days, now)
    window = timedelta(hours=24)

    def one(name: str, fn: Callable[..., Any], *args: Any) -> tuple[str, Callable[[Any], Any]]:
        return name, lambda c: fn(c, *args)

    b: int = BROADCASTS
    counts: q.Counts = defaultdict(lambda: defaultdict(int))
    start = now - timedelta(days=10)
    span = (start, start + timedelta(days=1), window)
    yield one("broadcast: texts by status, code, variant (A/B)", q.sends, b, counts)
    yield one("broadcast: texts by status, code (no A/B)", q.sends, b - 1, counts)
    yield one("broadcast: fans who clicked", q.clicks, b, counts)
    yield one("broadcast: fans who replied (A/B)", q.replies, b, True, counts)
    yield one("broadcast: fans who replied (no A/B)", q.replies, b - 1, False, counts)
    yield one("broadcast: opt-outs within 24 h (A/B)", q.after, b, True, counts, "o",
              consent_events, consent_events.c.at, span, consent_events.c.action == "opt_out")  # fmt: skip
    yield one("broadcast: hand-offs within 24 h (A/B)", q.after, b, True, counts, "h",
              escalations, escalations.c.created_at, span)  # fmt: skip
    yield one("broadcast: the whole report", q.broadcast_report, b, window, now)
    yield one(f"line: texts in, answered by the bot ({days} days)", q.texts_per_day, since, until)
    yield one(f"line: hand-offs per day ({days} days)", q.hand_offs_per_day, since, until)
    yield one(f"line: first answer medians ({days} days)", q.first_answers_per_day, since, until)
    yield one(f"line: opt-ins, opt-outs ({days} days)", q.consent_per_day, since, until)
    yield one("line: list size now", q.subscribed_now, until)
    yield one(f"flow funnels ({days} days)", q.funnels, since, until)
    yield one("top topics", q.top_topics, since, 10)


def bench(url: str, args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    db = Database(url)
    db.migrate()
    kind = db.engine.dialect.name
    if args.without_indexes:
        drop_report_indexes(db)
    print(f"\n{kind}: writing {args.fans:,} fans and about {args.messages:,} texts", flush=True)
    t0 = time.perf_counter()
    counts = fill(db, args.fans, args.messages, now)
    t_fill = time.perf_counter() - t0
    t0 = time.perf_counter()
    analyse(db)
    print(f"  written in {t_fill:.0f} s, analysed in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{t} {n:,}" for t, n in counts.items()), flush=True)  # fmt: skip
    label = "without the report indexes" if args.without_indexes else "with migrations 0016-0017"
    print(f"\n{kind}, {label}: seconds per query (first run / best of 3)")
    worst = 0.0
    for name, fn in queries(args.days, now):
        first, best = timed(db, fn)
        worst = max(worst, best)
        flag = "" if best < 1.0 else "   <- over 1 s"
        print(f"  {name:<52} {first:7.3f} / {best:7.3f}{flag}", flush=True)
    t0 = time.perf_counter()
    r = reports.line_report_sync(db, args.days, now=now)
    whole = time.perf_counter() - t0
    print(f"  {'the whole line report (' + str(len(r.broadcasts)) + ' broadcasts)':<52} "
          f"{whole:7.3f}")  # fmt: skip
    print(f"{kind}: slowest query {worst:.3f} s (best of 3); aim < 1 s each", flush=True)
    db.close()


@contextmanager
def sqlite_url(keep: str | None) -> Iterator[str]:
    if keep:
        Path(keep).unlink(missing_ok=True)
        yield f"sqlite:///{keep}"
        return
    with tempfile.TemporaryDirectory(prefix="fanline-reports-") as tmp:
        yield f"sqlite:///{tmp}/reports.db"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--fans", type=int, default=1_000_000)
    p.add_argument("--messages", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--without-indexes", action="store_true",
                   help="drop migration 0016's indexes first (to see what they buy)")  # fmt: skip
    p.add_argument("--database-url", default=os.environ.get("FANLINE_TEST_DATABASE_URL"))
    p.add_argument("--keep", help="SQLite: write the database here and keep it")
    args = p.parse_args()
    print_baseline()
    if args.db in ("sqlite", "both"):
        with sqlite_url(args.keep) as url:
            bench(url, args)
    if args.db in ("postgresql", "both"):
        if not args.database_url:
            sys.exit("PostgreSQL: set FANLINE_TEST_DATABASE_URL or --database-url")
        with scratch_schema(args.database_url, "bench_reports") as url:
            bench(url, args)


if __name__ == "__main__":
    main()
