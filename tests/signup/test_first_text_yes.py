"""A brand-new number whose first text is "YES" (the line was advertised as "text YES to join")
is signed up at once, its consent recorded as a keyword opt-in is, and is never pitched: not
"just reply YES" to a YES, not again later."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from bot.messages import InboundSms
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.storage.tables import consent_events
from tests.conftest import ROOT

US = "+15550100000"
LATER = ["when is the presale", "what merch is there", "ok", "lol", "is there a vip package"]


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    env = {"FANLINE_DATABASE_URL": database_url, "FANLINE_SECRET_KEY": "test"}
    rt = await Runtime.start(load_settings(ROOT, env=env))
    try:
        yield rt
    finally:
        await rt.close()


async def send(rt: Runtime, number: str, body: str):  # type: ignore[no-untyped-def]
    return await rt.handle(InboundSms(f"SM{uuid.uuid4().hex}", number, US, body))


def said(outcome) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [d.get("response") for t, d in outcome.events if t == "utter"]


@pytest.mark.parametrize("first", ["YES", "yes!", "Yeah"])
async def test_a_first_text_yes_subscribes_and_is_never_pitched(
    runtime: Runtime, first: str
) -> None:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    out = await send(runtime, number, first)
    assert said(out) == ["utter_opt_in_confirmed"]
    assert all("reply YES" not in r.reply.body for r in out.replies)
    contact = await runtime.store.contact_by_phone(number)
    assert contact is not None and contact.subscription == "subscribed"

    def ledger(conn):  # type: ignore[no-untyped-def]
        return [dict(r._mapping) for r in conn.execute(
            sa.select(consent_events).where(consent_events.c.contact_id == contact.id))]  # fmt: skip

    [row] = runtime.store.db.run_sync(ledger)
    assert (row["action"], row["method"]) == ("opt_in", "sms_keyword")
    assert row["text_shown"] == out.replies[0].reply.body  # what they were told they joined
    for body in LATER:
        later = await send(runtime, number, body)
        assert "utter_ask_opt_in" not in said(later), body


async def test_a_first_text_that_is_not_a_yes_still_gets_the_question(runtime: Runtime) -> None:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    assert "utter_ask_opt_in" in said(await send(runtime, number, "hi there"))
    contact = await runtime.store.contact_by_phone(number)
    assert contact is not None and contact.subscription != "subscribed"
