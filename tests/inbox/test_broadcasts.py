"""Broadcast progress in the inbox: the counts, the JSON API's roles, and the page."""

from __future__ import annotations

import re

import httpx

from bot.audience.broadcasts import BroadcastService
from bot.domain import ConsentChange
from bot.inbox.broadcasts import list_progress
from bot.messages import DeliveryReport
from bot.storage import Store
from tests.broadcasts.helpers import add_fans, broadcast, number

from .conftest import Server, logged_in


async def running_broadcast(store: Store, fans: int = 5) -> tuple[BroadcastService, int]:
    """A broadcast to `fans` subscribed fans, enqueued: every text waits in the outbox."""
    await add_fans(store, [{"phone": number(i), "profile": {"first_name": f"F{i}"}}
                           for i in range(fans)])  # fmt: skip
    service = BroadcastService(store)
    bid = await broadcast(service, "Hi {first_name|friend}! Presale opens Tuesday.")
    await service.send(bid)
    assert await service.enqueue(bid) == fans
    return service, bid


async def send_some(store: Store) -> None:
    """What the sender and Twilio do to five texts: 2 sent (1 then delivered), 1 failed, 2 wait."""
    claimed = await store.claim_outbox(3)
    assert len(claimed) == 3
    await store.outbox_sent([(claimed[0].id, "SMaaa", 1, "GSM-7"), (claimed[1].id, "SMbbb", 1, "GSM-7")])  # fmt: skip
    await store.outbox_failed(claimed[2].id, 30006, "landline or unreachable carrier")
    assert await store.apply_delivery_report(DeliveryReport("SMaaa", "delivered"))


async def test_progress_counts_every_text_once_with_failures_by_code(store: Store) -> None:
    service, bid = await running_broadcast(store)
    await send_some(store)
    fan = await store.contact_by_phone(number(4))
    assert fan is not None
    await store.set_subscription(fan.id, ConsentChange("opt_out", "sms_keyword"))
    [p] = await list_progress(service)
    assert (p.id, p.status, p.recipients) == (bid, "sending", 5)
    # the fan who opted out mid-broadcast gets nothing: their queued text is cancelled
    assert (p.queued, p.sent, p.delivered, p.failed, p.held, p.cancelled) == (1, 1, 1, 1, 0, 1)
    assert p.failed_by_code == {"30006": 1} and p.opted_out_since == 1
    assert p.done == 4 and p.running
    await service.pause(bid)
    [paused] = await list_progress(service)
    assert (paused.status, paused.queued, paused.held) == ("paused", 0, 1)
    assert not paused.running  # nothing moves while paused: the page stops polling


async def test_everyone_may_watch_but_only_admins_control(server: Server, store: Store) -> None:
    _, bid = await running_broadcast(store)
    pause = f"/api/v1/broadcasts/{bid}/pause"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as anon:
        assert (await anon.get("/api/v1/broadcasts")).status_code == 401
        assert (await anon.get(f"/api/v1/broadcasts/{bid}")).status_code == 401
        assert (await anon.post(pause)).status_code == 401
    async with logged_in(server.url, "ana") as (ana, csrf):
        listed = (await ana.get("/api/v1/broadcasts")).json()
        [item] = listed["items"]
        assert (item["id"], item["status"], item["queued"], item["recipients"]) == (
            bid,
            "sending",
            5,
            5,
        )
        assert listed["running"] is True
        assert (await ana.post(pause, headers={"X-CSRF-Token": csrf})).status_code == 403
        assert (await ana.get(f"/api/v1/broadcasts/{bid}")).json()["status"] == "sending"
        assert (await ana.get("/api/v1/broadcasts/999")).status_code == 404


async def test_an_admin_pauses_resumes_and_cancels(server: Server, store: Store) -> None:
    _, bid = await running_broadcast(store)
    base = f"/api/v1/broadcasts/{bid}"
    async with logged_in(server.url, "root") as (admin, csrf), server.hub.subscribe() as feed:
        h = {"X-CSRF-Token": csrf}
        assert (await admin.post(base + "/pause")).status_code == 403  # CSRF first
        paused = (await admin.post(base + "/pause", headers=h)).json()
        assert (paused["texts"], paused["broadcast"]["status"], paused["broadcast"]["held"]) == (
            5, "paused", 5)  # fmt: skip
        event = feed.get_nowait()
        assert (event.kind, event.data["broadcast_id"], event.data["action"]) == (
            "broadcast", bid, "pause")  # fmt: skip
        assert server.woken == []
        resumed = (await admin.post(base + "/resume", headers=h)).json()
        assert resumed["broadcast"]["queued"] == 5 and server.woken == [1]  # sender woken
        assert (await admin.post(base + "/resume", headers=h)).status_code == 409  # not paused
        cancelled = (await admin.post(base + "/cancel", headers=h)).json()
        assert (cancelled["texts"], cancelled["broadcast"]["cancelled"]) == (5, 5)
        r = await admin.post(base + "/pause", headers=h)
        assert r.status_code == 409 and "cancelled" in r.json()["error"]
    assert await store.claim_outbox(10) == []  # nothing of it is sent any more


def forms(page: str) -> set[str]:
    return set(re.findall(r'action="/inbox/broadcasts/\d+/(\w+)"', page))


async def test_the_page_shows_progress_and_admin_controls(server: Server, store: Store) -> None:
    async with logged_in(server.url, "ana") as (ana, csrf):
        empty = await ana.get("/inbox/broadcasts")
        assert empty.status_code == 200 and "No broadcasts yet" in empty.text
        _, bid = await running_broadcast(store)
        await send_some(store)
        page = (await ana.get("/inbox/broadcasts")).text
        assert 'data-page="broadcasts" data-running="1"' in page
        assert f'data-broadcast="{bid}" data-status="sending"' in page
        assert re.search(r'data-field="queued">2<', page) and "error 30006: 1" in page
        assert '<progress max="5" value="3"' in page
        assert forms(page) == set()  # an agent sees no controls ...
        denied = await ana.post(f"/inbox/broadcasts/{bid}/pause", data={"csrf": csrf})
        assert denied.status_code == 403  # ... and cannot post them
    async with logged_in(server.url, "root") as (admin, csrf):
        assert forms((await admin.get("/inbox/broadcasts")).text) == {"pause", "cancel"}
        done = await admin.post(f"/inbox/broadcasts/{bid}/pause", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == "/inbox/broadcasts"
        page = (await admin.get("/inbox/broadcasts")).text
        assert forms(page) == {"resume", "cancel"} and 'data-field="held">2<' in page
        again = await admin.post(f"/inbox/broadcasts/{bid}/pause", data={"csrf": csrf})
        assert again.status_code == 409 and "only a running one pauses" in again.text


async def test_an_ab_broadcast_shows_its_variants_and_an_admin_sends_the_winner(
    server: Server, store: Store
) -> None:
    from bot.audience.variants import ab_test
    from bot.storage.tables import messages

    await add_fans(store, [{"phone": number(i)} for i in range(30)])
    service = BroadcastService(store)
    ab = ab_test("A: https://tix.example.com", ["B: B https://tix.example.com"], test_share="40%")
    bid = await broadcast(service, "A: https://tix.example.com", ab=ab)
    await service.send(bid)
    tested = await service.enqueue(bid)
    assert 0 < tested < 30
    async with logged_in(server.url, "root") as (admin, csrf):
        page = (await admin.get("/inbox/broadcasts")).text
        assert 'data-variant="A"' in page and 'data-variant="B"' in page
        assert f'/inbox/broadcasts/{bid}/send-winner"' in page
        h = {"X-CSRF-Token": csrf}
        sent = (await admin.post(f"/api/v1/broadcasts/{bid}/send-winner", headers=h)).json()
        assert sent["broadcast"]["status"] == "enqueuing"
        assert [v["label"] for v in sent["broadcast"]["variants"]] == ["A", "B"]
        again = await admin.post(f"/api/v1/broadcasts/{bid}/send-winner", headers=h)
        assert again.status_code == 409 and "already sent" in again.json()["error"]
    await service.run_due()  # the scheduler writes the rest's texts
    count = await store.db.run(
        lambda c: c.execute(
            messages.select().with_only_columns(messages.c.id).where(messages.c.broadcast_id == bid)
        ).all()
    )
    assert len(count) == 30
