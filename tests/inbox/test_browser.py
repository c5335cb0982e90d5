"""The inbox in a real browser (headless Chromium through Playwright) against the whole server:
a fan's escalated text arrives live, an agent claims it, replies (the reply reaches the
Twilio-compatible server through the real sender), resolves, and the bot answers the fan again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.inbox.auth import Auth
from bot.storage import Store
from tests.app.stack import Stack
from tests.app.stack import running_stack as _stack
from tests.conftest import needs_chromium

from .conftest import FAST_HASHER, PASSWORD, Server

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = needs_chromium


@pytest.fixture
async def stack(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    # `indirect` parameters: settings overrides (reply_budget_s=0: every answer by the SDK)
    async for s in _stack(database_url, **getattr(request, "param", {})):
        auth = Auth(s.store.db, b"unused", hasher=FAST_HASHER)
        await auth.create_agent("ana", PASSWORD, display_name="Ana")
        yield s


def fan() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


# a turn past the reply budget (a loaded machine) answers through the SDK, not inline: the test
# holds either way, and the zero budget takes that path every time
@pytest.mark.parametrize("stack", [{}, {"reply_budget_s": 0.0}], ids=["inline", "by-sdk"],
                         indirect=True)  # fmt: skip
async def test_escalation_to_resolution_in_the_browser(stack: Stack, browser: Any) -> None:
    from playwright.async_api import expect

    page = await (await browser.new_context(viewport={"width": 1100, "height": 800})).new_page()
    await page.goto(stack.url + "/inbox/login")
    await page.fill("input[name=username]", "ana")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#live")).to_have_class("live on")  # the event stream is open

    number = fan()
    assert "YES" in await stack.answer(number, "hi")  # a new fan is asked to opt in first
    await stack.answer(number, "YES")
    answer = await stack.answer(number, "can i talk to a real person")
    assert "A real person" in answer  # the bot's honest acknowledgement
    row = page.locator(".queue .item", has_text="can i talk to a real person")
    await expect(row).to_be_visible()  # arrived live, no reload
    await expect(row.locator(".badge").nth(1)).to_have_text("fan asked")

    await row.locator("a").click()
    await expect(page.locator(".msg.fan .meta .intent").last).to_contain_text("human_handoff")
    await page.click("#claim")
    await expect(page.locator(".thread-head")).to_contain_text("Ana")
    await page.fill("#reply", "Hi! Ana from Nova's team here. What can I do for you?")
    await expect(page.locator("#segments")).to_contain_text("1 SMS · GSM-7")
    before = len(stack.twilio.accepted(number))  # the bot's answers, when they came by the SDK
    await page.click("#send")
    await expect(page.locator(".msg.agent")).to_contain_text("Ana from Nova's team")

    sent = await stack.sent_after(number, before)
    assert sent["body"] == "Hi! Ana from Nova's team here. What can I do for you?"
    assert sent["from"] == "+15005550006"

    # while a person owns the thread, the bot stays silent and the text shows up live
    held = await stack.text(number, "thank you so much")
    assert "<Message>" not in held.text
    await expect(page.locator(".msg.fan", has_text="thank you so much")).to_be_visible()

    await page.click("#resolve")
    await expect(page).to_have_url(stack.url + "/inbox")
    contact = await stack.store.contact_by_phone(number)
    assert await stack.store.conversation_status(contact.id) == "resolved"

    assert await stack.answer(number, "when is the next tour")  # the bot answers the fan again
    assert await stack.store.conversation_status(contact.id) not in ("open", "snoozed")


async def test_broadcast_progress_updates_live_and_an_admin_pauses(
    server: Server, store: Store, browser: Any
) -> None:
    from playwright.async_api import expect

    from .test_broadcasts import running_broadcast, send_some

    _, bid = await running_broadcast(store)
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await page.goto(server.url + "/inbox/login")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.click('a.nav[href="/inbox/broadcasts"]')
    row = page.locator(f'[data-broadcast="{bid}"]')
    await expect(row.locator('[data-field="queued"]')).to_have_text("5")
    await page.evaluate("window.notReloaded = true")

    await send_some(store)  # the sender and Twilio at work meanwhile
    await expect(row.locator('[data-field="delivered"]')).to_have_text("1", timeout=10_000)
    await expect(row.locator('[data-field="failed_by_code"]')).to_have_text("error 30006: 1")
    assert await page.evaluate("window.notReloaded === true")  # fetched, not reloaded

    await page.click(f"#pause-{bid}")
    await expect(row.locator('[data-field="status"]')).to_have_text("paused")
    await expect(row.locator('[data-field="held"]')).to_have_text("2")
    assert await page.locator(f"#resume-{bid}").is_visible()
