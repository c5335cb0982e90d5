"""A fan-provided field that a phone would show as a link never goes into a text as one,
whatever set it: a slot filled by a text, the profile (a signup form anyone can fill in for any
number), a broadcast's or a topic reply's `{first_name}` (issue 16, item 7). It renders as
missing, so the placeholder's fallback reads instead; engine-made links are left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.audience.broadcast_model import parse_template, render
from bot.audience.broadcasts import BroadcastService
from bot.domain import Contact
from bot.flows.responses import interpolate
from bot.storage import Store
from bot.storage.tables import messages
from tests.broadcasts.helpers import add_fans, broadcast, number

LINKS = ["http://evil.example/x", "evil.example", "www.evil", "Ana@evil", "x/y", "Bit.ly"]
NAMES = ["Ana", "St. John", "J.R.", "O'Brien", "Zoë", "Mary-Jo"]


async def test_a_broadcast_fills_a_link_like_first_name_with_its_fallback(store: Store) -> None:
    fans = [*LINKS, *NAMES]
    await add_fans(store, [
        {"phone": number(i), "profile": {"first_name": name, "timezone": "America/New_York"}}
        for i, name in enumerate(fans)
    ])  # fmt: skip
    service = BroadcastService(store)
    bid = await broadcast(service, "Hi {first_name|friend}! Tour in {timezone}")
    await service.send(bid)
    assert await service.enqueue(bid, at=datetime.now(UTC)) == len(fans)

    def bodies(conn: sa.Connection) -> dict[str, str]:
        rows = conn.execute(
            sa.select(messages.c.to_number, messages.c.body).where(messages.c.broadcast_id == bid)
        )
        return {r.to_number: r.body for r in rows}

    sent = await store.db.run(bodies)  # rendered by SQL, on both databases
    for i, name in enumerate(fans):
        shown = "friend" if name in LINKS else name
        # a typed field (a zone) keeps its slash: only free text is read for links
        assert sent[number(i)] == f"Hi {shown}! Tour in America/New_York"


@pytest.mark.parametrize("name", LINKS)
def test_responses_broadcast_previews_and_topic_replies_leave_a_link_out(name: str) -> None:
    contact = Contact(1, None, {"first_name": name, "email": "ana@example.com"}, "subscribed",
                      datetime.now(UTC))  # fmt: skip
    fan = {**contact.fan_fields(), "signup_link": "https://fans.example/s/abc"}
    assert "first_name" not in fan and fan["email"] == "ana@example.com"
    # from the profile, and from a slot a text filled in
    assert interpolate("Hi {first_name|there}!", {}, fan) == "Hi there!"
    assert interpolate("Hi {first_name|there}!", {"first_name": name}, {}) == "Hi there!"
    # an engine-made link is not a fan field
    assert interpolate("Join: {signup_link}", {}, fan) == "Join: https://fans.example/s/abc"
    parts = parse_template("Hi {first_name|friend}!")
    assert render(parts, {"first_name": name}) == "Hi friend!"  # the broadcast preview
    import bot.inbox  # noqa: F401  (bot.topics.service is imported through it: a module cycle)
    from bot.topics.service import personalised

    doors = parse_template("Hi {first_name}! Doors at 7")
    assert personalised(doors, {"first_name": name}) == "Hi! Doors at 7"


@pytest.mark.parametrize("name", NAMES)
def test_ordinary_names_are_filled_in(name: str) -> None:
    assert interpolate("Hi {first_name|there}!", {"first_name": name}, {}) == f"Hi {name}!"
    assert render(parse_template("Hi {first_name|friend}!"), {"first_name": name}) == f"Hi {name}!"
