"""A STOP committing while a signup form is submitted (PostgreSQL, READ COMMITTED): the signup
must see the STOP, or the STOP must come after it; never a fan re-subscribed after STOP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from bot.domain import ConsentChange
from bot.storage import Store
from bot.storage.tables import consent_events, contacts, conversations
from tests.broadcasts.helpers import add_fans
from tests.signup.test_signup import FORM, nonce, site  # noqa: F401 (fixture)


def lock_waiters(store: Store) -> int:
    """Backends of this database waiting for a lock right now."""
    with store.db.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
        ).scalar_one()


async def wait_for_a_lock_waiter(store: Store, timeout_s: float = 60.0) -> None:
    """Polls a state (not a timing): the signup's transaction is blocked on the STOP's locks."""
    deadline = time.monotonic() + timeout_s
    while lock_waiters(store) == 0:
        assert time.monotonic() < deadline, "the signup never reached the STOP's locks"
        await asyncio.sleep(0.02)


async def test_a_stop_committing_during_a_signup_submit_is_not_undone(
    store: Store,
    site,  # noqa: F811
    database_url: str,
) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL")
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550190", "subscription": "pending"}])
    at = datetime.now(UTC)
    await store.db.run(
        lambda c: c.execute(
            conversations.insert().values(contact_id=cid, status="bot", updated_at=at)
        )
    )
    link = links(cid)
    async with httpx.AsyncClient(timeout=120) as http:
        page = await http.get(link)
        form = {**FORM, "nonce": nonce(page.text)}
        # the STOP's turn, written but not committed yet: it holds the fan's rows
        with store.db.engine.connect() as stop:
            tx = stop.begin()
            stop.execute(
                conversations.update()
                .where(conversations.c.contact_id == cid)
                .values(updated_at=at)
            )
            stop_at = datetime.now(UTC)  # after the link was issued
            store._change_consent(
                stop, cid, ConsentChange("opt_out", "sms_keyword", "STOP"), stop_at
            )
            post = asyncio.ensure_future(http.post(link, data=form))
            await wait_for_a_lock_waiter(store)
            tx.commit()
        answer = await post
    assert answer.status_code == 409 and "text START" in answer.text
    contact = await store.db.run(
        lambda c: c.execute(sa.select(contacts).where(contacts.c.id == cid)).one()
    )
    ledger = await store.db.run(
        lambda c: (
            c.execute(sa.select(consent_events.c.action).where(consent_events.c.contact_id == cid))
            .scalars()
            .all()
        )
    )
    assert (contact.subscription, ledger) == ("unsubscribed", ["opt_out"])
