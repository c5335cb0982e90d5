"""What the queue tells an agent: the text that needs answering (not a filler the bot answered
after it), and fans who opted out marked, out of the unclaimed views."""

from __future__ import annotations

import itertools

import httpx

from bot.domain import ConsentChange, TurnRecord
from bot.inbox import queue, threads
from bot.messages import InboundSms, OutboundSms
from bot.storage import Store

from .conftest import PASSWORD, US, Server, Team, escalate, fan

_sids = itertools.count(1)
COMPLAINT = "my order never came and nobody answers my emails"


async def bot_answers(store: Store, phone: str, body: str) -> None:
    """A text the bot answered itself while the fan waits (a reaction to "👍", say)."""
    rec = await store.record_inbound(InboundSms(f"SMq{next(_sids):031d}", phone, US, body))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id,
                   events=[("intent", {"intent": "react_positive", "confidence": 0.97})],
                   replies=[OutboundSms(phone, "Love it!", sender=US)])
    )  # fmt: skip


async def test_the_preview_is_the_text_that_reached_a_person_not_a_filler_after_it(
    store: Store, team: Team
) -> None:
    await escalate(store, fan(1), COMPLAINT, reason="complaint", priority="high")
    await bot_answers(store, fan(1), "👍")
    await escalate(store, fan(2), "the show was cancelled and I want my money back")
    await bot_answers(store, fan(2), "ok")
    items = {i.contact_id: i for i in (await queue.list_queue(store.db, "all", team.ana)).items}
    previews = sorted(i.preview for i in items.values())
    assert previews == [COMPLAINT, "the show was cancelled and I want my money back"]
    # a later question that also reached a person is the one shown
    await escalate(store, fan(1), "also where is my refund??")
    items = {i.name: i for i in (await queue.list_queue(store.db, "all", team.ana)).items}
    assert "also where is my refund??" in {i.preview for i in items.values()}


async def test_an_opted_out_fan_is_marked_and_leaves_the_unclaimed_views(
    store: Store, team: Team
) -> None:
    gone = await escalate(store, fan(1), COMPLAINT)
    stays = await escalate(store, fan(2), "can I talk to someone?")
    contact = (await threads.load_thread(store.db, gone)).contact_id
    await store.set_subscription(contact, ConsentChange("opt_out", "sms_keyword"))

    unassigned = await queue.list_queue(store.db, "unassigned", team.ana)
    assert [i.conversation_id for i in unassigned.items] == [stays]
    assert unassigned.counts["unassigned"] == 1
    every = {
        i.conversation_id: i for i in (await queue.list_queue(store.db, "all", team.ana)).items
    }
    assert every[gone].opted_out and not every[stays].opted_out
    assert every[gone].to_json()["opted_out"] is True
    # claimed before the STOP: it stays with its agent, marked
    await queue.claim(store.db, stays, team.ana)
    other = (await threads.load_thread(store.db, stays)).contact_id
    await store.set_subscription(other, ConsentChange("opt_out", "sms_keyword"))
    mine = await queue.list_queue(store.db, "mine", team.ana)
    assert [(i.conversation_id, i.opted_out) for i in mine.items] == [(stays, True)]


async def test_the_pages_mark_an_opted_out_fan_and_offer_no_reply_box(
    server: Server, store: Store, team: Team
) -> None:
    gone = await escalate(store, fan(1), COMPLAINT)
    reachable = await escalate(store, fan(2), "can I talk to someone?")
    contact = (await threads.load_thread(store.db, gone)).contact_id
    await store.set_subscription(contact, ConsentChange("opt_out", "sms_keyword"))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        page = await client.get("/inbox/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        await client.post(
            "/inbox/login", data={"username": "ana", "password": PASSWORD, "csrf": token}
        )
        default = (await client.get("/inbox/")).text
        every = (await client.get("/inbox/?view=all")).text
        thread = (await client.get(f"/inbox/threads/{gone}")).text
        other = (await client.get(f"/inbox/threads/{reachable}")).text
    assert f'data-conversation="{gone}"' not in default
    row = every.split(f'data-conversation="{gone}"')[1].split("</li>")[0]
    assert "opted out" in row
    assert 'id="opted-out"' in thread and 'id="reply-form"' not in thread
    assert 'id="opted-out"' not in other and 'id="reply-form"' in other
