"""GET /l/<code>: a tracked link's redirect (web role), never an open redirect.

The only place a fan's tap lands: the code is looked up by its unique index and the answer is
a 302 to the URL stored with it, and to nothing else; an unknown or malformed code is a 404
page. Nothing of the request (path, query, Referer) becomes the target. The click is recorded
as `human`, `preview` or `bot` (`bot.audience.links.agent_kind`) in the same unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html

from bot.audience.links import CODE, agent_kind
from bot.storage.db import Database
from bot.storage.link_store import LinkStore

log = logging.getLogger(__name__)

_GONE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Link not found</title>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto;
padding: 0 1rem"><h1>Link not found</h1><p>This link does not exist or was removed.</p></body>
</html>"""
# a redirect is per fan: no shared cache may keep it, and no search engine index it
_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex",
            "Referrer-Policy": "no-referrer"}  # fmt: skip


def redirect_blueprint(db: Callable[[], Database]) -> Blueprint:
    bp = Blueprint("links")
    stores: dict[int, LinkStore] = {}

    @bp.route("/l/<code:str>", methods=["GET", "HEAD"])
    async def follow(request: Request, code: str) -> HTTPResponse:
        if not CODE.match(code):
            return _not_found()
        database = db()
        store = stores.get(id(database))
        if store is None:  # statements built once per database (a test may swap it)
            store = stores[id(database)] = LinkStore(database)
        kind = agent_kind(request.headers.get("user-agent"), request.method)
        url = await store.click(code, kind)
        if url is None or urlsplit(url).scheme not in ("http", "https"):
            return _not_found()
        return HTTPResponse(status=302, headers={"Location": url, **_HEADERS})

    return bp


def _not_found() -> HTTPResponse:
    return html(_GONE, status=404, headers=_HEADERS)
