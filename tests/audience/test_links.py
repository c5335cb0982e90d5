"""Tracked links on a real database and over real HTTP: one code per recipient and URL, the
redirect goes only to the stored URL (never an open redirect), clicks by kind, segments,
erasure."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sanic import Sanic

from bot.audience.broadcasts import BroadcastService
from bot.audience.links import LinkSettings, agent_kind, link_settings, with_utm
from bot.audience.privacy import erase_fan, export_fan
from bot.audience.redirect import ClickLog, redirect_blueprint
from bot.audience.segments import parse_cli
from bot.errors import ConfigError
from bot.flows.loader import read_yaml
from bot.storage import Store
from bot.storage.engagement_tables import link_clicks, links
from bot.storage.link_store import shorten_text
from bot.storage.tables import messages
from bot.testing import bind_local, serve_in_process, url_of
from tests.broadcasts.helpers import add_fans, broadcast, number

BASE = "https://nova.fm"
BODY = "Presale: https://tix.example.com/nova?day=1 and merch https://shop.example.com/x."
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")  # fmt: skip


def service(store: Store) -> BroadcastService:
    return BroadcastService(store, links=LinkSettings(domain=BASE))


async def sent_bodies(store: Store, broadcast_id: int) -> dict[int, str]:
    def rows(conn: sa.Connection) -> dict[int, str]:
        m = messages.c
        found = conn.execute(sa.select(m.contact_id, m.body).where(m.broadcast_id == broadcast_id))
        return {r.contact_id: r.body for r in found}

    return await store.db.run(rows)


async def stored_links(store: Store) -> list[dict]:  # type: ignore[type-arg]
    def rows(conn: sa.Connection) -> list[dict]:  # type: ignore[type-arg]
        return [dict(r._mapping) for r in conn.execute(sa.select(links).order_by(links.c.id))]

    return await store.db.run(rows)


async def clicks(store: Store) -> list[tuple[int, str, int, int | None]]:
    def rows(conn: sa.Connection) -> list[tuple[int, str, int, int | None]]:
        c = link_clicks.c
        found = conn.execute(sa.select(c.link_id, c.agent_kind, c.clicks, c.contact_id))
        return sorted(tuple(r) for r in found)  # type: ignore[misc]

    return await store.db.run(rows)


async def sent_broadcast(store: Store, fans: int, body: str = BODY) -> tuple[int, list[int]]:
    ids = await add_fans(store, [{"phone": number(i)} for i in range(fans)])
    svc = service(store)
    bid = await broadcast(svc, body)
    await svc.send(bid)
    await svc.enqueue(bid)
    return bid, ids


@pytest.fixture
def written() -> ClickLog:
    """The redirect's click log: a test writes it (`flush`) before it reads the clicks."""
    return ClickLog()


@pytest.fixture
async def site(store: Store, written: ClickLog) -> AsyncIterator[str]:
    sock = bind_local()
    app = Sanic(f"links_test_{id(store)}")
    app.blueprint(redirect_blueprint(lambda: store.db, written))
    async with serve_in_process(app, sock):
        yield url_of(sock)


async def test_each_recipient_gets_own_codes_and_no_personal_data(store: Store) -> None:
    bid, ids = await sent_broadcast(store, 3)
    bodies = await sent_bodies(store, bid)
    codes = {
        cid: re.findall(r"https://nova\.fm/l/([0-9A-Za-z]+)", body) for cid, body in bodies.items()
    }
    assert all(len(c) == 2 and all(len(x) >= 8 for x in c) for c in codes.values())
    every = [x for c in codes.values() for x in c]
    assert len(set(every)) == 6  # one per recipient and URL
    for cid, body in bodies.items():
        assert body.endswith(".")  # the sentence's full stop is not part of the URL
        assert "tix.example.com" not in body and number(ids.index(cid)) not in body
    stored = await stored_links(store)
    assert {s["code"] for s in stored} == set(every)
    tix = [s["url"] for s in stored if "tix" in s["url"]]
    assert tix[0] == ("https://tix.example.com/nova?day=1&utm_source=sms&utm_medium=fanline"
                      "&utm_campaign=test")  # fmt: skip
    assert all(s["broadcast_id"] == bid and s["message_id"] for s in stored)


async def test_preview_counts_segments_with_the_short_links(store: Store) -> None:
    await add_fans(store, [{"phone": number(1)}])
    svc = service(store)
    long_url = "https://tix.example.com/" + "a" * 150
    bid = await broadcast(svc, f"Tickets: {long_url}")
    preview = await svc.preview(bid)
    assert preview.max_segments == 1
    assert preview.sample[0].startswith("Tickets: https://nova.fm/l/")


async def test_redirect_goes_to_the_stored_url_and_counts_clicks_by_kind(
    store: Store, site: str, written: ClickLog
) -> None:
    bid, ids = await sent_broadcast(store, 2)
    first = await stored_links(store)
    link = first[0]
    async with httpx.AsyncClient(base_url=site, follow_redirects=False) as http:
        r = await http.get(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
        assert r.status_code == 302 and r.headers["location"] == link["url"]
        assert "no-store" in r.headers["cache-control"]
        await http.get(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
        await http.get(f"/l/{link['code']}", headers={"User-Agent": "WhatsApp/2.23.20 A"})
        await http.head(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
        await http.get(f"/l/{link['code']}", headers={"User-Agent": "curl/8.5.0"})
        await written.flush()
        await http.get(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
    await written.flush()
    assert await clicks(store) == [
        (link["id"], "bot", 2, link["contact_id"]),
        (link["id"], "human", 3, link["contact_id"]),
        (link["id"], "preview", 1, link["contact_id"]),
    ]
    stats = await service(store).stats(bid)
    assert stats.clicks == 1
    clicked = parse_cli("clicked", [f"clicked={bid}"])
    assert await service(store).records.count(clicked) == 1
    assert await service(store).records.count(parse_cli("x", [f"clicked={bid + 1}"])) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/l/AAAAAAAAAA",  # a well-formed code nobody was given
        "/l/short",  # not a code
        "/l//evil.example.com",
        "/l/%2F%2Fevil.example.com",
        "/l/https:%2F%2Fevil.example.com",
        "/l/%252F%252Fevil.example.com",
        "/l/AAAAAAAAAA?url=https://evil.example.com",
        "/l/AAAAAAAAAA/../../evil",
        "/l/%E2%80%AEAAAAAAAA",
        "//evil.example.com/l/AAAAAAAAAA",
    ],
)
async def test_the_redirect_is_never_open(
    store: Store, site: str, written: ClickLog, path: str
) -> None:
    await sent_broadcast(store, 1)
    async with httpx.AsyncClient(follow_redirects=False) as http:
        r = await http.get(site + path, headers={"User-Agent": PHONE_UA})
    assert r.status_code == 404
    assert "location" not in r.headers
    await written.flush()
    assert await clicks(store) == []


async def test_a_code_leads_only_to_its_own_url(store: Store, site: str) -> None:
    await sent_broadcast(store, 1)
    one, two = await stored_links(store)
    async with httpx.AsyncClient(base_url=site, follow_redirects=False) as http:
        r = await http.get(f"/l/{one['code']}?next={two['url']}", headers={"Referer": two["url"]})
    assert r.headers["location"] == one["url"] != two["url"]


async def test_erasure_unties_links_and_clicks_from_the_fan(
    store: Store, site: str, written: ClickLog
) -> None:
    await sent_broadcast(store, 1)
    link = (await stored_links(store))[0]
    async with httpx.AsyncClient(base_url=site) as http:
        await http.get(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
    await written.flush()
    second = (await stored_links(store))[1]
    exported = await export_fan(store, number(0))  # data rights: the fan's links and clicks
    assert [(x["code"], x["agent_kind"]) for x in exported["links"]] == [
        (link["code"], "human"), (second["code"], None)
    ]  # fmt: skip
    await erase_fan(store, number(0))
    assert all(s["contact_id"] is None for s in await stored_links(store))
    assert [c[3] for c in await clicks(store)] == [None]
    async with httpx.AsyncClient(base_url=site, follow_redirects=False) as http:
        r = await http.get(f"/l/{link['code']}", headers={"User-Agent": PHONE_UA})
    assert r.status_code == 302  # the link still works; it no longer names anyone


def test_agents_are_told_apart() -> None:
    assert agent_kind(PHONE_UA) == "human"
    assert agent_kind(PHONE_UA, "HEAD") == "bot"
    assert agent_kind("facebookexternalhit/1.1") == "preview"
    assert agent_kind("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)") == "preview"
    assert agent_kind("Twitterbot/1.0") == "preview"
    assert agent_kind("Mozilla/5.0 (compatible; Googlebot/2.1)") == "bot"
    assert agent_kind(None) == "bot"
    assert agent_kind("python-requests/2.31") == "bot"


def test_settings_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("fanline:\n  links:\n    domain: nova.fm\n    utm: {source: 3}\n")
    section = read_yaml(path)["fanline"]["links"]
    with pytest.raises(ConfigError) as err:
        link_settings(section, str(path), 2)
    assert err.value.location is not None and err.value.location.line == 4
    ok = link_settings({"domain": "nova.fm/", "utm": False}, "config.yml")
    assert ok.base("http://x") == "https://nova.fm/l/" and ok.utm == {}
    assert with_utm("https://a.example/?utm_source=mail", {"source": "sms"}, {}) == (
        "https://a.example/?utm_source=mail"
    )


async def test_a_flow_text_gets_its_own_short_links(store: Store) -> None:
    (cid,) = await add_fans(store, [{"phone": number(1)}])
    text = "How was the show? Photos: https://nova.fm/photos (and https://nova.fm/photos)"
    out = await store.db.run(
        lambda conn: shorten_text(
            conn, text, base=f"{BASE}/l/", utm={"source": "sms"}, contact_id=cid, flow="post_show"
        )  # fmt: skip
    )
    codes = re.findall(r"https://nova\.fm/l/([0-9A-Za-z]{10})", out)
    assert len(codes) == 2 and len(set(codes)) == 2 and "photos" not in out
    stored = await stored_links(store)
    assert [(s["flow"], s["contact_id"], s["url"]) for s in stored] == [
        ("post_show", cid, "https://nova.fm/photos?utm_source=sms")
    ] * 2
