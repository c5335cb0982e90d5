"""The inbox's Reports page (admins): the figures and charts of `fanline report`, drawn on the
server as inline SVG (no JavaScript, no build step; the page's CSP stays strict).

Off the inbound path. The figures are read on a thread of their own (`reports.line_report`),
so the database's writer never waits for them; the charts are drawn in a child process and
kept by the figures they show (`audience/chart_pool.py`): a matplotlib draw holds the GIL,
which on a thread would stall the event loop (webhooks, the inbox) for the draw's second or two.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.audience import reports
from bot.audience.chart_pool import ChartPool
from bot.errors import BadRequest
from bot.inbox.web import Inbox, authorise

PERIODS = (7, 30, 90)


def report_page_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    pool = ChartPool()

    @bp.listener("after_server_stop")
    async def close_pool(app: Any) -> None:
        await pool.aclose()

    @bp.get("/reports")
    async def reports_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        days, broadcast_id = _args(request.args)
        report = await asyncio.to_thread(
            reports.line_report_sync, inbox.db, days, broadcast_id, window=_window(inbox)
        )
        charts = await pool.draw(report)
        return page("reports.html", session=session, report=report, charts=charts, days=days,
                    periods=PERIODS, broadcast_id=broadcast_id, pct=reports.pct)  # fmt: skip


def _window(inbox: Inbox) -> timedelta:
    runtime = inbox.runtime()
    hours = getattr(getattr(runtime, "settings", None), "reply_window_h", 24.0)
    return timedelta(hours=float(hours))


def _args(args: Any) -> tuple[int, int | None]:
    try:
        days = int(args.get("days") or 30)
        broadcast = int(args["broadcast"][0]) if args.get("broadcast") else None
    except ValueError as exc:
        raise BadRequest("days and broadcast are numbers") from exc
    if not 1 <= days <= 366:
        raise BadRequest("days: 1 to 366")
    return days, broadcast
