"""Link opt-in in a real browser (headless Chromium through Playwright) against the whole server:
a new fan texts the number, opens the personal link from the reply on a phone-sized screen,
fills in the form, and is subscribed with a provable consent record and a welcome text.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bot.audience.signup import LINK_DAYS, TOKEN_SALT
from bot.storage.tables import consent_events
from tests.app.stack import Stack
from tests.app.stack import running_stack as _stack
from tests.conftest import needs_chromium

PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) FanlineSignupTest/1.0 Mobile"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "user_agent": PHONE_UA}  # fmt: skip
LINK = re.compile(r"(https?://[^\s<]+/join/[A-Za-z0-9_.\-]+)")

pytestmark = needs_chromium


@pytest.fixture
async def stack(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    # `indirect` parameters: settings overrides (reply_budget_s=0: every answer by the SDK)
    async for s in _stack(database_url, **getattr(request, "param", {})):
        yield s


@pytest.fixture
async def phone(browser: Any) -> AsyncIterator[Any]:
    """A new page in headless Chromium, emulating a phone."""
    context = await browser.new_context(**PHONE)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def new_fan() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


def link_in(twiml: str) -> str:
    match = LINK.search(html.unescape(twiml))
    assert match, "no signup link in the reply"
    return match.group(1)


async def ledger(stack: Stack, contact_id: int) -> list[dict[str, Any]]:
    def rows(conn: Any) -> list[dict[str, Any]]:
        found = conn.execute(
            sa.select(consent_events).where(consent_events.c.contact_id == contact_id)
        )
        return [dict(r._mapping) for r in found]

    return await stack.store.db.run(rows)


# a turn past the reply budget (a loaded machine) answers through the SDK, not inline: the test
# holds either way, and the zero budget takes that path every time
@pytest.mark.parametrize("stack", [{}, {"reply_budget_s": 0.0}], ids=["inline", "by-sdk"],
                         indirect=True)  # fmt: skip
async def test_a_new_fan_joins_through_the_link_on_a_phone(stack: Stack, phone: Any) -> None:
    from playwright.async_api import expect

    number = new_fan()
    link = link_in(await stack.answer(number, "hey is this nova?"))
    assert link.startswith(stack.url + "/join/") and number[2:] not in link  # no number in it

    await phone.goto(link)
    consent_shown = await phone.locator("#consent-text").text_content()
    assert consent_shown and "STOP" in consent_shown
    fits = await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the signup page scrolls sideways on a phone"
    await phone.fill("#first_name", "Ana")
    await phone.fill("#birthday", "2001-03-14")
    await phone.select_option("#country", "US")
    await phone.fill("#zip", "94105")
    await phone.check("#age_ok")
    await phone.check("#consent")
    before = len(stack.twilio.accepted(number))  # the link itself, when it came by the SDK
    await phone.click("button[type=submit]")
    await expect(phone.locator("body")).to_contain_text("You're in, Ana!")

    contact = await stack.store.contact_by_phone(number)
    assert contact is not None and contact.subscription == "subscribed"
    assert contact.profile["first_name"] == "Ana" and contact.profile["zip"] == "94105"
    [row] = await ledger(stack, contact.id)
    assert (row["action"], row["method"]) == ("opt_in", "web_form")
    assert row["text_shown"] == consent_shown  # the exact words on the fan's screen
    assert row["ip"] == "127.0.0.1" and row["user_agent"] == PHONE_UA

    welcome = await stack.sent_after(number, before)
    assert "Ana" in welcome["body"] and "STOP" in welcome["body"]
    assert welcome["from"] == "+15005550006"

    answer = await stack.answer(number, "TOUR")
    assert "Northern Lights" in answer  # answered normally ...
    assert "/join/" not in answer and "reply YES" not in answer  # ... not asked to opt in again
    assert len(await ledger(stack, contact.id)) == 1


async def test_a_forged_or_expired_link_shows_a_friendly_page(stack: Stack, phone: Any) -> None:
    from playwright.async_api import expect

    number = new_fan()
    link = link_in(await stack.answer(number, "hello"))
    token = link.rsplit("/", 1)[1]
    forged = f"{stack.url}/join/{token[:-4]}{'AAAA' if token[-4:] != 'AAAA' else 'BBBB'}"

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - (LINK_DAYS + 1) * 86400

    contact = await stack.store.contact_by_phone(number)
    assert contact is not None
    old = URLSafeTimedSerializer(
        stack.app.ctx.settings.secret_key, salt=TOKEN_SALT, signer=LongAgo
    ).dumps(contact.id)
    for url in (forged, f"{stack.url}/join/{old}", f"{stack.url}/join/not-a-token"):
        response = await phone.goto(url)
        assert response is not None and response.status == 404
        await expect(phone.locator("body")).to_contain_text("invalid or has expired")
        assert await phone.locator("form").count() == 0  # no form to fill in
        assert "Traceback" not in await phone.content()
    assert (await stack.store.contact_by_phone(number)).subscription != "subscribed"  # type: ignore[union-attr]
