"""The signup page over real HTTP: signed links, the form, consent ledger, welcome text, CSRF."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sanic import Sanic

from bot.audience.signup import DEFAULT_CONSENT, SignupLinks, signup_blueprint, validate_form
from bot.domain import ConsentChange
from bot.settings import Settings
from bot.storage import Store
from bot.storage.tables import consent_events, contacts, messages
from bot.testing import bind_local, serve_in_process, url_of
from tests.broadcasts.helpers import add_fans

FORM = {"first_name": "Ana", "birthday": "2001-03-14", "country": "US", "zip": "94105",
        "email": "ana@example.com", "age_ok": "yes", "consent": "yes"}  # fmt: skip


def settings(url: str) -> Settings:
    return Settings(
        project_dir=Path("."), database_url="", secret_key=b"signup-test", public_url=url
    )


@pytest.fixture
async def site(store: Store) -> AsyncIterator[tuple[str, SignupLinks]]:
    sock = bind_local()
    cfg = settings(url_of(sock))
    app = Sanic(f"signup_test_{id(store)}")
    app.blueprint(
        signup_blueprint(cfg, lambda: store, card_name="Nova Vale", card_number="+15005550006")
    )
    async with serve_in_process(app, sock) as url:
        yield url, SignupLinks(cfg)


def nonce(page: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', page)
    assert match, "no nonce in the form"
    return match.group(1)


async def rows(store: Store, table: sa.Table, contact_id: int) -> list[dict]:  # type: ignore[type-arg]
    return await store.db.run(
        lambda c: [
            dict(r._mapping)
            for r in c.execute(sa.select(table).where(table.c.contact_id == contact_id))
        ]
    )


async def test_the_link_carries_no_number_and_the_form_subscribes_the_fan(
    store: Store, site
) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550100", "subscription": "pending"}])
    link = links(cid)
    assert "4155550100" not in link and link.startswith(url + "/join/")
    async with httpx.AsyncClient(headers={"user-agent": "TestPhone/1.0"}) as http:
        page = await http.get(link)
        assert page.status_code == 200 and html.escape(DEFAULT_CONSENT) in page.text
        done = await http.post(link, data={**FORM, "nonce": nonce(page.text)})
    assert done.status_code == 200 and "You&#39;re in, Ana!" in done.text
    [contact] = await store.db.run(
        lambda c: c.execute(sa.select(contacts).where(contacts.c.id == cid)).all()
    )
    assert contact.subscription == "subscribed"
    assert (
        contact.profile["zip"] == "94105" and contact.profile["timezone"] == "America/Los_Angeles"
    )
    [event] = await rows(store, consent_events, cid)
    assert (event["action"], event["method"], event["text_shown"]) == (
        "opt_in",
        "web_form",
        DEFAULT_CONSENT,
    )
    assert event["ip"] == "127.0.0.1" and event["user_agent"] == "TestPhone/1.0"
    [welcome] = await rows(store, messages, cid)
    assert welcome["status"] == "queued" and "Ana" in welcome["body"]
    assert welcome["media_urls"] == [url + "/join/card.vcf"]


async def test_missing_consent_rerenders_the_form_escaped_and_changes_nothing(
    store: Store, site
) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550101", "subscription": "pending"}])
    async with httpx.AsyncClient() as http:
        page = await http.get(links(cid))
        form = {
            **FORM,
            "first_name": "<script>x</script>",
            "consent": "",
            "nonce": nonce(page.text),
        }
        again = await http.post(links(cid), data=form)
    assert again.status_code == 422
    assert "<script>x</script>" not in again.text and "&lt;script&gt;" in again.text
    assert "tick the box" in again.text
    assert await rows(store, consent_events, cid) == []


async def test_forged_expired_or_cross_site_posts_are_refused(store: Store, site) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550102", "subscription": "pending"}])
    async with httpx.AsyncClient() as http:
        assert (await http.get(url + "/join/not-a-token")).status_code == 404
        other = SignupLinks(replace(settings(url), secret_key=b"another-key"))
        assert (await http.get(other(cid))).status_code == 404
        page = await http.get(links(cid))
        token_nonce = nonce(page.text)
    async with httpx.AsyncClient() as stranger:  # no cookie: a cross-site form post
        refused = await stranger.post(links(cid), data={**FORM, "nonce": token_nonce})
    assert refused.status_code == 403
    assert await rows(store, consent_events, cid) == []


async def test_a_fan_who_opted_out_resubscribes_through_the_form(store: Store, site) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550103", "subscription": "unsubscribed"}])
    async with httpx.AsyncClient() as http:
        page = await http.get(links(cid))
        await http.post(links(cid), data={**FORM, "nonce": nonce(page.text)})
        card = await http.get(url + "/join/card.vcf")
    [event] = await rows(store, consent_events, cid)
    assert event["action"] == "resubscribe"
    assert card.headers["content-type"].startswith("text/vcard") and "FN:Nova Vale" in card.text


def test_the_age_gate_and_field_rules() -> None:
    today = date(2026, 6, 1)
    young = {**FORM, "birthday": "2015-01-01"}
    assert "13 or older" in validate_form(young, today, 13)[1]["birthday"]
    profile, errors = validate_form({**FORM, "country": "GB", "zip": ""}, today, 13)
    assert errors == {} and profile["country"] == "GB" and profile["timezone"] == "Europe/London"
    _, errors = validate_form({**FORM, "zip": "9410", "email": "nope", "age_ok": ""}, today, 13)
    assert set(errors) == {"zip", "email", "age_ok"}


# ---- single use, and STOP after the link wins (issue 9, item 10) ------------------------


async def join_with(http: httpx.AsyncClient, link: str, **changes: str) -> httpx.Response:
    page = await http.get(link)
    assert page.status_code == 200, page.text
    return await http.post(link, data={**FORM, **changes, "nonce": nonce(page.text)})


async def test_a_link_subscribes_once_and_reposting_it_changes_nothing(store: Store, site) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550104", "subscription": "pending"}])
    link = links(cid)
    async with httpx.AsyncClient() as http:
        page = await http.get(link)
        first = await http.post(link, data={**FORM, "nonce": nonce(page.text)})
        assert first.status_code == 200 and "You&#39;re in" in first.text
        # the same page posted again (a replay, or a second tab) with another name
        again = await http.post(link, data={**FORM, "first_name": "Eve", "nonce": nonce(page.text)})
        reopened = await http.get(link)
    assert again.status_code == 409 and "already been used" in again.text
    assert reopened.status_code == 409 and "already been used" in reopened.text
    [contact] = await rows_of_contact(store, cid)
    assert contact.profile["first_name"] == "Ana"  # not rewritten
    assert len(await rows(store, consent_events, cid)) == 1
    assert len(await rows(store, messages, cid)) == 1  # one welcome text


async def test_a_newer_link_still_works_for_an_already_subscribed_fan(store: Store, site) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550105", "subscription": "pending"}])
    async with httpx.AsyncClient() as http:
        old = links(cid)
        await join_with(http, old)
        fresh = links(cid)  # a later text carried a new link
        done = await join_with(http, fresh, first_name="Anna")
        stale = await http.get(old)
    assert done.status_code == 200 and "already on the list" in done.text
    assert stale.status_code == 409
    [contact] = await rows_of_contact(store, cid)
    assert contact.profile["first_name"] == "Anna"


async def test_a_fan_who_texted_stop_after_the_link_is_not_resubscribed_by_it(
    store: Store, site
) -> None:  # type: ignore[no-untyped-def]
    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550106", "subscription": "pending"}])
    link = links(cid)
    async with httpx.AsyncClient() as http:
        page = await http.get(link)
        await store.set_subscription(cid, ConsentChange("opt_out", "sms_keyword"))  # STOP
        posted = await http.post(link, data={**FORM, "nonce": nonce(page.text)})
        opened = await http.get(link)
    assert posted.status_code == 409 and "text START" in posted.text
    assert opened.status_code == 409 and "text START" in opened.text
    [contact] = await rows_of_contact(store, cid)
    assert contact.subscription == "unsubscribed" and contact.profile == {}
    assert [e["action"] for e in await rows(store, consent_events, cid)] == ["opt_out"]
    assert await rows(store, messages, cid) == []  # no welcome text


async def test_two_posts_of_one_link_at_once_subscribe_once(store: Store, site) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    url, links = site
    [cid] = await add_fans(store, [{"phone": "+14155550107", "subscription": "pending"}])
    link = links(cid)
    async with httpx.AsyncClient() as http:
        page = await http.get(link)
        form = {**FORM, "nonce": nonce(page.text)}
        answers = await asyncio.gather(*(http.post(link, data=form) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert len(await rows(store, consent_events, cid)) == 1
    assert len(await rows(store, messages, cid)) == 1


async def rows_of_contact(store: Store, cid: int) -> list:  # type: ignore[type-arg]
    return await store.db.run(
        lambda c: c.execute(sa.select(contacts).where(contacts.c.id == cid)).all()
    )
