"""The inbox's Reports page: admins only, the figures of a broadcast and its variants, charts
inline as SVG that a strict CSP still draws; in headless Chromium as an admin sees it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.storage import Store
from tests.audience.report_rows import NAME, write_history
from tests.conftest import needs_chromium

from .conftest import PASSWORD, Server, Team, logged_in


async def test_admins_see_the_figures_and_charts(store: Store, team: Team, server: Server) -> None:
    h = write_history(store)
    async with logged_in(server.url, "root") as (client, _):
        r = await client.get("/inbox/reports", params={"days": 7})
        assert r.status_code == 200
        assert 'id="nav-reports"' in r.text
        page = r.text
        section = page[page.index(f'id="broadcast-{h.broadcast_id}"') :]
        assert re.search(r'class="fig-clicks">3<', section)
        assert re.search(r'class="fig-ctr">50.0 %<', section)
        assert re.search(r'class="fig-replies">3<', section)
        assert "Presale $5 &lt;b&gt;" in page and "<b>\n" not in section[:200]
        assert page.count("<svg ") >= 5  # broadcast, variants, texts, list, first answer...
        # CSP forbids inline styles: the charts carry presentation attributes instead
        assert "style=" not in page and "<style" not in page
        assert 'class="variant-B winner"' in page
        one = await client.get("/inbox/reports", params={"days": 7, "broadcast": h.broadcast_id})
        assert one.status_code == 200 and one.text.count('class="card report-broadcast"') == 1
        assert (await client.get("/inbox/reports", params={"days": "x"})).status_code == 400
    async with logged_in(server.url, "ana") as (client, _):
        assert (await client.get("/inbox/reports")).status_code == 403
        assert 'id="nav-reports"' not in (await client.get("/inbox")).text


def _in_chromium(test: Any) -> Any:
    for mark in needs_chromium:
        test = mark(test)
    return test


@_in_chromium
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_broadcasts_clicks_and_replies_in_the_browser(
    store: Store, team: Team, server: Server, browser: Any
) -> None:
    from playwright.async_api import expect

    h = write_history(store)
    page = await (await browser.new_context(viewport={"width": 1200, "height": 900})).new_page()
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text else 0)
    await page.goto(server.url + "/inbox/login")
    await page.fill("input[name=username]", "root")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.click("#nav-reports")
    card = page.locator(f"#broadcast-{h.broadcast_id}")
    await expect(card.locator(".bc-name")).to_have_text(NAME)
    await expect(card.locator(".fig-clicks")).to_have_text("3")
    await expect(card.locator(".fig-ctr")).to_have_text("50.0 %")
    await expect(card.locator(".fig-replies")).to_have_text("3")
    await expect(card.locator(".fig-reply-rate")).to_have_text("50.0 %")
    # the chart is drawn (a real box on the page), its numbers are text on its bars
    chart = card.locator(f"#chart-broadcast-{h.broadcast_id} svg")
    await expect(chart).to_be_visible()
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    await expect(chart.locator("text", has_text="CTR 50.0 %")).to_have_count(1)
    # bars keep their colours under the page's CSP: filled, not black
    bar = chart.locator('path[fill="#2f6db5"]').first  # "Sent", blue
    assert await bar.evaluate("e => getComputedStyle(e).fill") == "rgb(47, 109, 181)"
    await expect(card.locator("tr.winner th")).to_contain_text("B")
    await expect(page.locator("#chart-texts-per-day svg")).to_be_visible()
    assert csp_errors == []
