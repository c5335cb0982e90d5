"""Topics in a real browser (headless Chromium) against the whole server: hand-offs grouped into
topics, a text split off and merged back, one reply reaching every fan once at the local Twilio
server; a bot turn labelled and the suggestion accepted; a topic made an FAQ, the bot retrained,
and the next fan asking answered by the bot."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.inbox.auth import Auth
from bot.topics import service as topics
from tests.app.stack import Stack
from tests.app.stack import running_stack as _stack
from tests.conftest import needs_chromium

from .conftest import FAST_HASHER, PASSWORD, escalate
from .test_topics_api import ACK, DENVER, REFUND, demo_copy, name_fans

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "Yes, tonight's Denver show is on: doors open at 7pm."

pytestmark = needs_chromium


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The whole server over a copy of the demo (teaching writes its content files)."""
    project = demo_copy(tmp_path / "fanline")
    if (ROOT / "models").is_dir():  # the trained model: the server starts without training
        shutil.copytree(ROOT / "models", project / "models")
    async for s in _stack(database_url, project_dir=project):
        auth = Auth(s.store.db, b"unused", hasher=FAST_HASHER)
        await auth.create_agent("ana", PASSWORD, display_name="Ana")
        await auth.create_agent("root", PASSWORD, role="admin", display_name="Robin")
        yield s
        teacher = getattr(s.app.ctx, "teacher", None)
        if teacher is not None:  # a retraining still running must not outlive the server
            await teacher.wait()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait (bounded) for a condition another task makes true: the sweep, the reloader."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def hand_offs(stack: Stack, texts: list[str], start: int) -> dict[str, tuple[str, int]]:
    """Fans whose texts reached a person (text -> (phone, conversation)), grouped by the
    server's own topic sweep."""
    phones = {text: f"+1303555{start + i:04d}" for i, text in enumerate(texts)}
    out = {text: (p, await escalate(stack.store, p, text)) for text, p in phones.items()}
    await name_fans(stack.store, {p: f"Fan{start + i}" for i, p in enumerate(phones.values())})
    sweep = stack.app.ctx.topics
    sweep.notify()
    db = stack.store.db
    await until(lambda: _grouped(db, start + len(texts)))
    return out


async def _grouped(db: Any, n: int) -> bool:
    counts = await topics.topic_counts(db)
    return counts["ungrouped"] == 0 and counts["waiting_texts"] >= n


async def log_in(browser: Any, stack: Stack, username: str) -> Any:
    page = await (await browser.new_context(viewport={"width": 1200, "height": 900})).new_page()
    await page.goto(stack.url + "/inbox/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    return page


async def test_split_merge_and_reply_to_a_topic_in_the_browser(stack: Stack, browser: Any) -> None:
    from playwright.async_api import expect

    fans = await hand_offs(stack, DENVER + REFUND, 0)
    page = await log_in(browser, stack, "ana")
    await page.click("#nav-topics")
    await expect(page.locator("#waiting-texts")).to_have_text(str(len(DENVER + REFUND)))
    denver_card = page.locator(".topic", has_text="denver").first
    await expect(denver_card.locator(".tp-size")).to_contain_text(f"{len(DENVER)} texts")
    await denver_card.locator(".tp-label").click()
    denver_url = page.url
    denver = int(denver_url.rsplit("/", 1)[1])
    await expect(page.locator(".ttext")).to_have_count(len(DENVER))

    # a text that does not belong: split it off, find it in its own topic, merge it back
    await page.locator(".ttext", has_text=DENVER[-1]).locator("input[type=checkbox]").check()
    await page.click("#split")
    await expect(page.locator(".ttext")).to_have_count(len(DENVER) - 1)
    await page.click("text=← Topics")
    await page.locator(".topic", has_text=DENVER[-1]).locator(".tp-label").click()
    await expect(page.locator(".ttext")).to_have_count(1)
    await page.select_option("#merge-into", str(denver))
    await page.click("#merge")
    await expect(page).to_have_url(denver_url)
    await expect(page.locator(".ttext")).to_have_count(len(DENVER))
    await page.fill("#label", "Denver tonight: still on?")
    await page.click("#rename")
    await expect(page.locator("#topic-label")).to_have_text("Denver tonight: still on?")

    # one answer to every fan in the topic
    await page.fill("#reply", "Hi {first_name}! " + ANSWER)
    await expect(page.locator("#segments")).to_contain_text("1 SMS · GSM-7")
    await expect(page.locator("#send")).to_have_text(f"Send to {len(DENVER)} fans")
    await page.click("#send")
    await expect(page.locator("#replies")).to_contain_text(ANSWER)
    await expect(page.locator(".ttext .done")).to_have_count(len(DENVER))
    # each fan: the bot's acknowledgement at hand-off, then the answer, once
    sent = await stack.twilio.wait_accepted(2 * len(DENVER) + len(REFUND))
    answers = [m for m in sent if m["body"] != ACK]
    assert sorted(m["to"] for m in answers) == sorted(fans[t][0] for t in DENVER)
    for i, m in enumerate(sorted(answers, key=lambda m: m["to"])):
        assert m["body"] == f"Hi Fan{i}! {ANSWER}"
    for text in DENVER:
        assert await stack.store.conversation_status(
            (await stack.store.contact_by_phone(fans[text][0])).id
        ) == "resolved"  # back to the bot  # fmt: skip
    await page.reload()  # a reload re-posts nothing and the answer is not sent again
    await stack.app.ctx.sender.drain()
    assert len([m for m in stack.twilio.accepted() if m["body"] != ACK]) == len(DENVER)


async def test_label_accept_and_make_an_faq_in_the_browser(
    database_url: str, stack: Stack, browser: Any
) -> None:
    from playwright.async_api import expect

    if database_url.startswith("postgresql"):  # 40 s of training per run: once is enough here
        pytest.skip("teach on PostgreSQL: tests/teach/test_teach.py; this run trains the demo")

    fans = await hand_offs(stack, DENVER + REFUND, 0)

    # an agent labels the bot's turn on a refund question
    page = await log_in(browser, stack, "ana")
    await page.goto(stack.url + f"/inbox/threads/{fans[REFUND[0]][1]}")
    turn = page.locator(".msg.fan", has_text=REFUND[0])
    await turn.locator(".label-turn summary").click()
    await turn.locator("select[name=intent]").select_option("ask_refund")
    await turn.locator(".label-intent").click()
    await expect(
        page.locator(".msg.fan", has_text=REFUND[0]).locator(".label-turn summary")
    ).to_have_text("Labelled: should have answered ask_refund · new · change")

    # an admin accepts it on the Suggestions page
    admin = await log_in(browser, stack, "root")
    await admin.click("#nav-suggestions")
    card = admin.locator(".suggestion", has_text=REFUND[0])
    await expect(card).to_contain_text("should have answered ask_refund")
    await card.locator("button", has_text="Accept").click()
    await expect(admin.locator(".suggestion")).to_have_count(0)
    await admin.click("text=Accepted")
    await expect(admin.locator(".suggestion", has_text=REFUND[0])).to_be_visible()

    # and makes the Denver topic an FAQ: prefilled from its label and the reply just sent
    await admin.click("#nav-topics")
    await admin.locator(".topic", has_text="denver").first.locator(".tp-label").click()
    await admin.fill("#label", "Denver show")
    await admin.click("#rename")
    await admin.fill("#reply", ANSWER)
    await admin.click("#send")
    await expect(admin.locator("#teach-intent")).to_have_value("ask_denver_show")
    await expect(admin.locator("#teach-response")).to_have_value(ANSWER)
    for text in DENVER:
        await expect(admin.locator("#teach-examples")).to_contain_text(text)
    await admin.click("#teach")
    await expect(admin.locator("h1")).to_contain_text("ask_denver_show")
    await expect(admin.locator("#taught-files")).to_contain_text("data/taught.yml")
    project = stack.app.ctx.settings.project_dir
    taught = (project / "data" / "taught.yml").read_text()
    assert "ask_denver_show" in taught and DENVER[0] in taught
    assert re.search(r"ask_refund[\s\S]*" + re.escape(REFUND[0]), taught)  # the accepted label
    assert ANSWER in (project / "domain" / "taught.yml").read_text()

    # retrained and reloaded: the next fan asking is answered by the bot
    runtime = stack.app.ctx.runtime
    before = runtime.pipeline.brain.interpreter.fingerprint
    state = await asyncio.wait_for(stack.app.ctx.teacher.wait(), 240)
    assert state["last_error"] is None, state
    await until(lambda: _reloaded(runtime, before), 60)
    # the page after the teach follows the retraining until the new model is live here
    status = admin.locator("#model-status")
    await expect(status).to_contain_text("The new model is live", timeout=30_000)
    assert runtime.pipeline.brain.interpreter.model_dir.name in await status.inner_text()
    assert ANSWER in await stack.answer(fans[DENVER[0]][0], DENVER[0])  # inline or by the SDK


async def _reloaded(runtime: Any, before: str) -> bool:
    return runtime.pipeline.brain.interpreter.fingerprint != before
