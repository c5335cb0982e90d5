"""A finished broadcast is `completed` (issue 17, item 7: it stayed `sending` forever): once it is
fully enqueued and every text is in a final state, in the service, the CLI, the page and the API."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from bot.audience.broadcast_cli import register_broadcast
from bot.storage import Store

from .conftest import Server, logged_in
from .test_broadcasts import running_broadcast, send_some


def cli(project: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path)
    register_broadcast(parser.add_subparsers())
    args = parser.parse_args(["--project", str(project), *argv])
    return int(args.func(args))


async def finish(store: Store) -> None:
    """The two texts `send_some` left waiting: one sent, one failed."""
    claimed = await store.claim_outbox(5)
    assert len(claimed) == 2
    await store.outbox_sent([(claimed[0].id, "SMccc", 1, "GSM-7")])
    await store.outbox_failed(claimed[1].id, 30003, "unreachable")


async def test_a_broadcast_with_every_text_final_is_completed(store: Store) -> None:
    service, bid = await running_broadcast(store)
    await send_some(store)  # 3 of 5 done, 2 waiting
    assert (await service.stats(bid)).status == "sending"
    assert await service.run_due() == [] and (await service.get(bid)).status == "sending"
    await finish(store)
    assert (await service.get(bid)).status == "sending"  # nobody has looked yet
    await service.run_due()  # the scheduler's step notices without anyone watching
    b = await service.get(bid)
    assert (b.status, b.finished_at is not None) == ("completed", True)
    stats = await service.stats(bid)
    assert (stats.status, stats.done, stats.recipients) == ("completed", 5, 5)
    assert [x.status for x in await service.all()] == ["completed"]
    assert await service.cancel(bid) == 0 and (await service.get(bid)).status == "completed"


async def test_a_text_whose_outcome_is_not_known_keeps_it_sending(store: Store) -> None:
    service, bid = await running_broadcast(store, fans=2)
    [one, _] = await store.claim_outbox(5)  # claimed: `sending`, the outcome not known yet
    await store.outbox_sent([(one.id, "SMddd", 1, "GSM-7")])
    assert (await service.stats(bid)).status == "sending"
    assert (await service.get(bid)).status == "sending"


async def test_the_cli_page_and_api_show_completed(
    server: Server,
    store: Store,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, bid = await running_broadcast(store)
    await send_some(store)
    await finish(store)
    async with logged_in(server.url, "ana") as (ana, _csrf):
        item = (await ana.get(f"/api/v1/broadcasts/{bid}")).json()
        assert (item["status"], item["done"], item["queued"]) == ("completed", 5, 0)
        page = (await ana.get("/inbox/broadcasts")).text
        assert f'data-broadcast="{bid}" data-status="completed"' in page
        spec = (await ana.get("/api/v1/openapi.json")).json()
        assert "completed" in str(spec)
    monkeypatch.setenv("FANLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FANLINE_SECRET_KEY", "test-secret")
    # the CLI runs its own event loop (asyncio.run): in a thread, not inside this test's
    assert await asyncio.to_thread(cli, tmp_path, "broadcast", "list") == 0
    assert f"{bid:>5}  completed " in capsys.readouterr().out
    assert await asyncio.to_thread(cli, tmp_path, "broadcast", "status", str(bid)) == 0
    assert f"broadcast {bid}: completed, 5 recipients" in capsys.readouterr().out
