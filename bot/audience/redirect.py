"""GET /l/<code>: a tracked link's redirect (web role), never an open redirect.

The only place a fan's tap lands: the code is looked up by its unique index and the answer is
a 302 to the URL stored with it, and to nothing else; an unknown or malformed code is a 404
page. Nothing of the request (path, query, Referer) becomes the target. The click, as `human`,
`preview` or `bot` (`bot.audience.links.agent_kind`), goes to a `ClickLog` that writes the
clicks of the last moment together (a tenth of a second): the answer waits for the lookup
only, and a burst of taps costs one write, not one each. A crash loses at most that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html

from bot.audience.links import CODE, agent_kind
from bot.storage.db import Database
from bot.storage.link_store import Click, LinkStore

log = logging.getLogger(__name__)

_GONE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Link not found</title>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto;
padding: 0 1rem"><h1>Link not found</h1><p>This link does not exist or was removed.</p></body>
</html>"""
# a redirect is per fan: no shared cache may keep it, and no search engine index it
_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex",
            "Referrer-Policy": "no-referrer"}  # fmt: skip


class ClickLog:
    """Clicks waiting to be written, summed per (link, kind); written `delay_s` after the first."""

    def __init__(self, delay_s: float = 0.1) -> None:
        self.delay_s = delay_s
        self._pending: dict[tuple[int, str], Click] = {}
        self._store: LinkStore | None = None
        self._soon: asyncio.Task[None] | None = None

    def add(self, store: LinkStore, link_id: int, contact_id: int | None, kind: str) -> None:
        if self._store is not store:  # another database (a test swapped it): write the old
            self._spawn_flush()
            self._store = store
        key = (link_id, kind)
        seen = self._pending.get(key)
        count = seen.count + 1 if seen else 1
        at = seen.at if seen else datetime.now(UTC)
        self._pending[key] = Click(link_id, contact_id, kind, at, count)
        if self._soon is None:
            self._soon = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.delay_s)  # gathering the moment's clicks, not synchronisation
        self._soon = None
        await self.flush()

    def _spawn_flush(self) -> None:
        if self._pending:
            asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Write what is pending now (the server's stop and tests call it too)."""
        pending, self._pending = list(self._pending.values()), {}
        if pending and self._store is not None:
            try:
                await self._store.record(pending)
            except Exception:  # top of a background write: the clicks are lost, not the redirect
                log.exception("tracked-link clicks not recorded (%d)", len(pending))

    async def close(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._soon
            self._soon = None
        await self.flush()


def redirect_blueprint(db: Callable[[], Database], clicks: ClickLog | None = None) -> Blueprint:
    bp = Blueprint("links")
    stores: dict[int, LinkStore] = {}
    clicks = clicks or ClickLog()

    @bp.route("/l/<code:str>", methods=["GET", "HEAD"])
    async def follow(request: Request, code: str) -> HTTPResponse:
        if not CODE.match(code):
            return _not_found()
        database = db()
        store = stores.get(id(database))
        if store is None:  # statements built once per database (a test may swap it)
            stores.clear()
            store = stores[id(database)] = LinkStore(database)
        link = await store.find(code)
        if link is None or urlsplit(link.url).scheme not in ("http", "https"):
            return _not_found()
        kind = agent_kind(request.headers.get("user-agent"), request.method)
        clicks.add(store, link.id, link.contact_id, kind)
        return HTTPResponse(status=302, headers={"Location": link.url, **_HEADERS})

    @bp.before_server_stop
    async def write_clicks(app: object) -> None:
        await clicks.close()
        for store in stores.values():
            store.close()

    return bp


def _not_found() -> HTTPResponse:
    return html(_GONE, status=404, headers=_HEADERS)
