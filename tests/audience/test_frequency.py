"""The frequency cap (bot.audience.frequency) at the outbox's guarded claim, on a real database:
a broadcast and a timed text racing to the same fans, STOP still winning, exempt kinds passing,
the window passing, and a broadcast with skipped texts completing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastService
from bot.audience.frequency import (
    DEFAULT,
    REASON,
    FrequencyCap,
    frequency_cap_settings,
    over_cap,
    parse_duration,
)
from bot.domain import ConsentChange
from bot.errors import ConfigError
from bot.messages import OutboundSms
from bot.settings import load_settings
from bot.storage import Store
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number

CAP = FrequencyCap(texts=1, per=timedelta(hours=16))


@pytest.fixture
def capped(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, hash_key=b"test-key")
    s.frequency_cap = CAP
    try:
        yield s
    finally:
        s.close()


def awake() -> dict[str, Any]:
    """A fan whose local time is about noon now: timed texts wait for 08:00-21:00 in the fan's
    zone, and these tests are about the cap, whatever hour of the day they run at."""
    offset = 12 - datetime.now(UTC).hour  # -11 .. +12; Etc/GMT's sign is the other way round
    return {"timezone": f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"}


async def queue(store: Store, fan_id: int, phone: str, kind: str) -> int:
    """A text in the outbox, due now; a timed flow's text is just this with kind "timed"."""
    at = datetime.now(UTC)
    [q] = await store.db.run(
        lambda c: store._enqueue(
            c, fan_id, [OutboundSms(phone, f"a {kind} text", kind=kind)], at, None
        )  # fmt: skip
    )
    return q.outbox_id


async def rows(store: Store, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    def get(conn: sa.Connection) -> dict[int, tuple[str, str | None]]:
        m = messages.c
        found = conn.execute(sa.select(m.id, m.status, m.error).where(m.id.in_(ids))).all()
        return {r.id: (r.status, r.error) for r in found}

    return await store.db.run(get)


async def due_now(store: Store) -> None:
    """Paced broadcast texts become due at once (the pacing is not under test here)."""
    await store.db.run(
        lambda c: c.execute(
            messages.update().where(messages.c.status == "queued").values(not_before=None)
        )  # fmt: skip
    )


def test_the_allowance_goes_to_the_oldest_texts_and_counts_what_was_sent() -> None:
    two = FrequencyCap(texts=2, per=timedelta(hours=1))
    assert over_cap(two, [(5, 1), (3, 1), (4, 1), (6, 2)], {2: 2}) == {5, 6}
    assert over_cap(None, [(1, 1), (2, 1)], {1: 9}) == set()
    assert parse_duration("16h") == timedelta(hours=16)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration(8) == timedelta(hours=8)
    assert parse_duration("sometimes") is None and parse_duration("0h") is None


def test_the_setting_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("fanline:\n  frequency_cap:\n    texts: 2\n    per: sometimes\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
    assert err.value.location is not None
    assert (err.value.location.file, err.value.location.line) == (str(config), 4)
    assert err.value.location.key == "fanline.frequency_cap.per"

    config.write_text("fanline:\n  frequency_cap: {texts: 3, per: 1d}\n")
    assert load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"}).frequency_cap == FrequencyCap(
        3, timedelta(days=1)
    )
    env = {"FANLINE_SECRET_KEY": "k", "FANLINE_FREQUENCY_CAP": "off"}
    assert load_settings(tmp_path, env=env).frequency_cap is None
    config.write_text("fanline: {}\n")
    assert load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"}).frequency_cap == DEFAULT
    with pytest.raises(ConfigError, match="whole number"):
        frequency_cap_settings({"texts": 0}, "config.yml", 3)


def _blocked_by(url: str, pid: int) -> bool:
    """Whether some session waits for a lock the session `pid` holds (PostgreSQL)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (pid,),
                ).scalar()
            )
    finally:
        engine.dispose()


async def test_a_broadcast_and_a_timed_flow_racing_to_the_same_fans_send_one_each(
    capped: Store, database_url: str
) -> None:
    fans = [number(i) for i in range(8)]
    ids = await add_fans(capped, [{"phone": p, "profile": awake()} for p in fans])
    service = BroadcastService(capped)
    bid = await broadcast(service, "Presale Tuesday!")
    await service.send(bid)
    await service.enqueue(bid)
    timed = [await queue(capped, i, p, "timed") for i, p in zip(ids, fans, strict=True)]
    await due_now(capped)
    items = await capped.reserve_outbox(100, 60)
    first = [i for i in items if i.kind == "broadcast"]
    second = [i for i in items if i.kind == "timed"]
    assert len(first) == len(second) == len(fans)

    # two senders (two worker processes: two stores, two connection pools), two transactions
    other = Store.open(database_url, hash_key=b"test-key", migrate=False)
    other.frequency_cap = CAP
    result: dict[str, Any] = {}

    def claim_second() -> None:
        result["second"] = other.db.run_sync(other._claim_sends, second)

    try:
        with capped.db.engine.begin() as conn:
            result["first"] = capped._claim_sends(conn, first)  # claimed, not committed yet
            racer = threading.Thread(target=claim_second)
            racer.start()
            if conn.dialect.name == "postgresql":  # hold on until the racer waits for our lock
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                deadline = datetime.now(UTC) + timedelta(seconds=60)
                while racer.is_alive() and not _blocked_by(database_url, pid):
                    assert datetime.now(UTC) < deadline, "the racer neither waited nor finished"
                    racer.join(timeout=0.02)
        racer.join(timeout=60)
        assert not racer.is_alive()
    finally:
        other.close()

    assert len(result["first"]) == len(fans) and result["second"] == []
    states = await rows(capped, timed)
    assert set(states.values()) == {("skipped", REASON)}


async def test_stop_still_wins_and_texts_the_fan_asked_for_are_never_capped(
    capped: Store,
) -> None:
    [fan, gone] = await add_fans(
        capped, [{"phone": number(1), "profile": awake()}, {"phone": number(2), "profile": awake()}]
    )
    sent = [await queue(capped, fan, number(1), "broadcast"),
            await queue(capped, gone, number(2), "timed")]  # fmt: skip
    assert {i.id for i in await capped.claim_outbox(10)} == set(sent)

    over = await queue(capped, fan, number(1), "timed")
    exempt = [await queue(capped, fan, number(1), k)
              for k in ("reply", "agent", "compliance", "system")]  # fmt: skip
    await capped.set_subscription(gone, ConsentChange("opt_out", "sms_keyword", "STOP"))
    stopped = await queue(capped, gone, number(2), "broadcast")
    claimed = {i.id for i in await capped.claim_outbox(10)}

    assert claimed == set(exempt)
    states = await rows(capped, [over, stopped])
    assert states[over] == ("skipped", REASON)
    assert states[stopped] == ("cancelled", "fan opted out before the send")  # not "skipped"


async def test_the_window_passes_and_a_broadcast_with_skipped_texts_completes(
    capped: Store,
) -> None:
    phones = [number(i) for i in range(3)]
    ids = await add_fans(capped, [{"phone": p, "profile": awake()} for p in phones])
    earlier = await queue(capped, ids[0], phones[0], "timed")
    await capped.claim_outbox(10)
    service = BroadcastService(capped)
    bid = await broadcast(service, "New single out now")
    await service.send(bid)
    await service.enqueue(bid)
    await due_now(capped)
    await capped.claim_outbox(10)
    await capped.outbox_sent([(i.id, f"SM{i.id:032d}", 1, "GSM")
                              for i in await capped.stale_sending(0)])  # fmt: skip

    stats = await service.stats(bid)
    assert stats.by_status == {"sent": 2, "skipped": 1} and stats.done == 3
    assert stats.status == "completed"  # nothing of it is left to send

    # 17 hours later the fan's window is over: the next marketing text goes
    await capped.db.run(
        lambda c: c.execute(messages.update().where(messages.c.contact_id == ids[0])
                            .values(claimed_at=datetime.now(UTC) - timedelta(hours=17)))
    )  # fmt: skip
    later = await queue(capped, ids[0], phones[0], "timed")
    assert [i.id for i in await capped.claim_outbox(10)] == [later]
    assert earlier != later
