"""The inbox's Reports page (admins): the figures and charts of `fanline report`, drawn on the
server as inline SVG (no JavaScript, no build step; the page's CSP stays strict).

Off the inbound path. The figures are read on a thread of their own (`reports.line_report`)
and the charts drawn on another, so neither the database's writer nor the event loop waits
for them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.audience import report_charts, reports
from bot.audience.report_model import LineReport
from bot.errors import BadRequest
from bot.inbox.web import Inbox, authorise

PERIODS = (7, 30, 90)


def report_page_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    @bp.get("/reports")
    async def reports_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox, admin=True)
        days, broadcast_id = _args(request.args)
        report = await asyncio.to_thread(
            reports.line_report_sync, inbox.db, days, broadcast_id, window=_window(inbox)
        )
        charts = await asyncio.to_thread(_draw, report)
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


def _draw(report: LineReport) -> dict[str, str]:
    """Every chart as an <svg> element, by its stem (broadcast-1, texts-per-day, funnel-2...)."""
    return {
        stem: report_charts.inline_svg(make(), stem)
        for stem, _title, make in report_charts.charts(report)
    }
