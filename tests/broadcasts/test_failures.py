"""One bad broadcast must not block the rest: bounded, typed segment conditions; `failed` with a
reason; a scheduler that takes each broadcast on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audience.broadcasts import BroadcastFailed, BroadcastService
from bot.audience.segments import load_segments, parse_cli
from bot.errors import ConfigError
from bot.storage import Store
from bot.storage.broadcast_tables import broadcasts
from tests.broadcasts.helpers import add_fans, broadcast, number
from tests.broadcasts.test_cli import run


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (["replied_within_days=800000"], "from 1 to 36,500"),
        (["replied_within_days=0"], "from 1 to 36,500"),
        (["replied_within_days=soon"], "whole number"),
        (["birthday_month=3.5"], "whole number"),
        (["signed_up_after=0001-01-01"], "between 1900 and 2100"),
        (["zip_prefix=9O0"], "1 to 5 digits"),
        (["country=USA"], "two-letter"),
    ],
)
def test_command_line_conditions_are_bounded_and_typed(where: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_cli("t", where)
    assert str(err.value).startswith("--where")


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("tags: [1, 2]", "the number 1: put it in quotes"),
        ("zip_prefix: [900]", "the number 900: put it in quotes"),
        ("not_tags: [true]", "YAML reads yes/no"),
        ("profile: {tier: {gold: 1}}", "expected text, got a nested mapping"),
        ("birthday_month: ['3']", "whole numbers 1-12"),
        ("birthday_month: true", "whole numbers 1-12"),
        ("replied_within_days: 800000", "from 1 to 36,500"),
        ("replied_within_days: 2.5", "whole number of days"),
        ("description: 7", "the number 7"),
    ],
)
def test_wrong_types_in_segments_yml_are_errors_with_file_and_line(
    tmp_path: Path, criterion: str, message: str
) -> None:
    path = tmp_path / "segments.yml"
    path.write_text(f"segments:\n  ok:\n    tags: [vip]\n  bad:\n    {criterion}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_segments(path)
    assert str(err.value).startswith(f"{path}:5 [segments.bad.")


async def _stored_with_bad_segment(store: Store, service: BroadcastService) -> int:
    """A broadcast whose stored segment no longer validates (stored before the bounds existed,
    or edited by hand): the kind of row that used to crash every scheduler step."""
    bid = await broadcast(service, "Bad")
    await store.db.run(
        lambda c: c.execute(
            broadcasts.update()
            .where(broadcasts.c.id == bid)
            .values(segment={"replied_within_days": 800000})
        )
    )
    return bid


async def test_a_failing_broadcast_ends_failed_and_the_scheduler_goes_on(store: Store) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(3)])
    service = BroadcastService(store)
    when = datetime.now(UTC) + timedelta(hours=1)
    bad = await broadcast(service, "Bad")
    await service.schedule(bad, when)
    await store.db.run(
        lambda c: c.execute(
            broadcasts.update()
            .where(broadcasts.c.id == bad)
            .values(segment={"replied_within_days": 800000})
        )
    )
    good = await broadcast(service, "Good")
    await service.schedule(good, when)

    assert await service.run_due(when + timedelta(seconds=1)) == [good]
    stats = await service.stats(good)
    assert stats.status == "sending" and stats.count("queued") == 3
    row = await store.db.run(lambda c: c.execute(sa_select_status(bad)).one())
    assert row.status == "failed" and "replied_within_days" in row.error
    assert await service.run_due(when + timedelta(seconds=20)) == []  # not retried every step
    listed = {b.id: b for b in await service.all()}  # listings still load the broken row
    assert listed[bad].status == "failed" and "replied_within_days" in (listed[bad].error or "")
    assert listed[bad].segment.description.startswith("invalid: ")


def sa_select_status(broadcast_id: int) -> sa.Select[tuple[str, str | None]]:
    return sa.select(broadcasts.c.status, broadcasts.c.error).where(broadcasts.c.id == broadcast_id)


async def test_a_failure_while_enqueuing_is_recorded_and_holds_what_was_queued(
    store: Store,
) -> None:
    await add_fans(store, [{"phone": number(i)} for i in range(4)])
    service = BroadcastService(store, chunk_size=2)
    bid = await broadcast(service, "Hi")
    await service.send(bid)
    assert await service.enqueue(bid, max_chunks=1) == 2  # then the stored segment breaks
    await store.db.run(
        lambda c: c.execute(
            broadcasts.update()
            .where(broadcasts.c.id == bid)
            .values(segment={"birthday_month": [13]})
        )
    )
    with pytest.raises(BroadcastFailed, match=f"broadcast {bid} failed: .*birthday_month"):
        await service.enqueue(bid)
    row = await store.db.run(lambda c: c.execute(sa_select_status(bid)).one())
    assert row.status == "failed"
    assert await service.cancel(bid) == 2  # the two texts already written were held, not sent


def test_send_of_a_broken_broadcast_is_a_clear_error_not_a_traceback(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "cli-test")
    with pytest.raises(ConfigError, match="from 1 to 36,500"):
        run(tmp_path, "broadcast", "create", "x", "--text", "Hi",
            "--where", "replied_within_days=800000")  # fmt: skip
    store = Store.open(database_url, hash_key=b"cli-test")
    try:
        asyncio.run(add_fans(store, [{"phone": number(1)}]))
        bid = asyncio.run(_stored_with_bad_segment(store, BroadcastService(store)))
    finally:
        store.close()
    with pytest.raises(BroadcastFailed):
        run(tmp_path, "broadcast", "send", str(bid), "--no-wait")
    assert run(tmp_path, "broadcast", "status", str(bid), "--no-wait") == 0
    out = capsys.readouterr().out
    assert f"broadcast {bid}: failed" in out and "failed: " in out
    assert run(tmp_path, "broadcast", "list") == 0
    assert "failed: " in capsys.readouterr().out
