"""bench/scale.py's measurements: connections held, table sizes, sends by claim time, CPU busy."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import scale  # noqa: E402
from bot.messages import OutboundSms  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage.db import normalise_url, scratch_schema  # noqa: E402
from tests.conftest import PG_URL  # noqa: E402


def test_the_machines_busy_ticks_never_exceed_its_total() -> None:
    busy0, total0 = scale.cpu_ticks()
    sum(i * i for i in range(200_000))  # some work between the two readings
    busy1, total1 = scale.cpu_ticks()
    assert 0 <= busy0 <= total0 and busy1 >= busy0 and total1 > total0
    assert busy1 - busy0 <= total1 - total0


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set")
def test_connections_held_are_counted_per_process() -> None:
    engine = sa.create_engine(normalise_url(PG_URL or ""), poolclass=sa.pool.NullPool)
    before = scale.pg_connections([os.getpid()])
    with engine.connect(), engine.connect():
        assert scale.pg_connections([os.getpid()]) == before + 2
    assert scale.pg_connections([os.getpid()]) == before
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set")
def test_table_sizes_and_claimed_sends_come_from_the_runs_own_schema() -> None:
    with scratch_schema(PG_URL or "", "scale") as url:
        store = Store.open(url, hash_key=b"t")
        texts = [OutboundSms(f"+1646{i:07d}", f"Tour dates #{i}") for i in range(7)]
        asyncio.run(store.queue_outbound(texts))
        store.close()
        sizes = {name: (rows, size) for name, rows, size in scale.table_sizes(url)}
        assert sizes["messages"][0] == 7 and sizes["messages"][1] > 0
        assert sizes["contacts"][0] == 0
        assert scale.claimed(url, 0, 2e9) == []  # queued, none claimed yet
        engine = sa.create_engine(normalise_url(url))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE messages SET claimed_at = now() WHERE id IN "
                                 "(SELECT id FROM messages ORDER BY id LIMIT 3)"))  # fmt: skip
        engine.dispose()
        assert len(scale.claimed(url, 0, 2e9)) == 3
