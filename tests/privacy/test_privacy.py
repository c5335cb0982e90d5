"""Data rights and the consent ledger: export, erasure that keeps the opt-out, CSV for audits."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from bot.audience.consent import history, write_csv
from bot.audience.privacy import erase_fan, export_fan
from bot.domain import ConsentChange
from bot.errors import BadRequest, NotFound
from bot.messages import InboundSms
from bot.storage import Store
from bot.storage.tables import consent_events, messages, suppressions
from tests.broadcasts.helpers import add_fans

FAN = "+14155550142"


async def fan_with_history(store: Store) -> int:
    recorded = await store.record_inbound(InboundSms("SM1", FAN, "+15005550006", "my bday is 3/14"))
    cid = recorded.contact.id
    await store.set_subscription(cid, ConsentChange("opt_in", "sms_yes", "Reply YES to join"))
    await store.db.run(
        lambda c: store._update_profile(c, cid, {"first_name": "Ana", "zip": "10001"})
    )
    await store.set_subscription(cid, ConsentChange("opt_out", "sms_keyword"))
    return cid


async def test_export_holds_everything_about_the_fan(store: Store) -> None:
    cid = await fan_with_history(store)
    data = await export_fan(store, "+1 (415) 555-0142")
    assert data["contact"]["id"] == cid and data["contact"]["profile"]["first_name"] == "Ana"
    assert [e["action"] for e in data["consent"]] == ["opt_in", "opt_out"]
    assert data["messages"][0]["body"] == "my bday is 3/14"
    assert "phone_hash" not in data["contact"]
    with pytest.raises(NotFound):
        await export_fan(store, "+14155550199")
    with pytest.raises(BadRequest):
        await export_fan(store, "not a number")


async def test_erasure_removes_personal_data_and_the_opt_out_survives(store: Store) -> None:
    cid = await fan_with_history(store)
    await erase_fan(store, FAN)
    data = await store.db.run(
        lambda c: (
            c.execute(sa.select(messages.c.body, messages.c.from_number)).all(),
            c.execute(sa.select(consent_events.c.action, consent_events.c.ip)).all(),
            c.execute(sa.select(suppressions.c.phone_hash)).scalars().all(),
        )
    )
    msgs, ledger, suppressed = data
    assert msgs == [("", None)]
    assert [a for a, _ in ledger] == ["opt_in", "opt_out"]  # the facts of consent stay
    assert suppressed == [store.phone_hash(FAN)] and FAN not in suppressed
    assert await store.contact_by_phone(FAN) is None
    with pytest.raises(NotFound):
        await export_fan(store, FAN)
    # the same number texts again: a fresh contact, still unsubscribed
    again = await store.record_inbound(InboundSms("SM2", FAN, "+15005550006", "hi"))
    assert again.contact.id != cid and again.contact.subscription == "unsubscribed"


async def test_erasing_twice_is_refused(store: Store) -> None:
    await add_fans(store, [{"phone": FAN}])
    await erase_fan(store, FAN)
    with pytest.raises(NotFound):
        await erase_fan(store, FAN)


async def test_consent_ledger_csv_streams_every_event(store: Store) -> None:
    cid = await fan_with_history(store)
    assert [e["method"] for e in await history(store, cid)] == ["sms_yes", "sms_keyword"]
    out = io.StringIO()
    assert write_csv(store, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["action"] for r in rows] == ["opt_in", "opt_out"]
    assert rows[0]["text_shown"] == "Reply YES to join" and rows[0]["contact_id"] == str(cid)
