"""The live feed checks its session as it streams: a disabled agent's or a logged-out session's
open feed stops before the next event (issue 16, item 7). Ids only ever go out, but an agent
who lost access must not keep watching the line's traffic until the browser reconnects."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.pipeline import TurnOutcome

from .conftest import Server, Team, logged_in
from .test_api import next_event


async def events_after(lines: AsyncIterator[str], server: Server, n: int) -> tuple[str, dict]:
    server.hub.publish_outcome(TurnOutcome(message_id=n, contact_id=5, held=False))
    return await next_event(lines)


async def test_a_disabled_agents_open_feed_stops_before_the_next_event(
    server: Server, team: Team
) -> None:
    server.hub.session_check_s = 0.0  # every event asks (production: at most once a second)
    async with (
        logged_in(server.url, "ana") as (client, _),
        client.stream("GET", "/api/v1/events") as stream,
    ):
        lines = stream.aiter_lines()
        assert await next_event(lines) == ("ready", {})
        assert await events_after(lines, server, 1) == (
            "message",
            {"contact_id": 5, "message_id": 1, "held": False},
        )
        await team.auth.set_active("ana", False)
        assert await events_after(lines, server, 2) == ("ended", {})
        assert [line async for line in lines if line.startswith("data: ")] == []  # closed


async def test_a_logged_out_sessions_open_feed_stops(server: Server, team: Team) -> None:
    server.hub.session_check_s = 0.0
    async with (
        logged_in(server.url, "ben") as (client, csrf),
        client.stream("GET", "/api/v1/events") as stream,
    ):
        lines = stream.aiter_lines()
        assert await next_event(lines) == ("ready", {})
        r = await client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        assert await events_after(lines, server, 3) == ("ended", {})
