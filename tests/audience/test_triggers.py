"""The scheduler's finding of `tagged`, `on_click` and `no_reply_after` jobs (SQL on a real
database): each read once through its cursor, each fan once per occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from bot.audience.scheduler import TimedFlows
from bot.flows import load_flows
from bot.storage import Store
from bot.storage.engagement_tables import fan_tags, flow_jobs, link_clicks, links
from bot.storage.tables import events, messages
from tests.audience.fans import insert_fans, number

FLOWS = """
flows:
  vinyl_news:
    trigger: {tagged: VINYL}
    steps: [{action: utter_x}]
  clicked_tour:
    trigger: {on_click: 7}
    steps: [{action: utter_x}]
  nudge:
    trigger: {no_reply_after: 2d, flow: profile}
    steps: [{action: utter_x}]
"""


def scheduler(store: Store, tmp_path: Path) -> TimedFlows:
    path = tmp_path / "timed.yml"
    path.write_text(FLOWS)
    engine = SimpleNamespace(flows=load_flows([path]))  # finding reads only the flows
    return TimedFlows(SimpleNamespace(store=store, brain=SimpleNamespace(engine=engine)))  # type: ignore[arg-type]


async def test_tags_clicks_and_silence_each_start_their_flow_once(
    store: Store, tmp_path: Path
) -> None:
    t0 = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)
    a, b, c = await store.db.run(
        lambda conn: insert_fans(
            conn,
            store.phone_hash,
            [number(i) for i in range(3)],
            signed_up=[t0 - timedelta(days=400)] * 3,
        )  # fmt: skip
    )

    def write(conn: sa.Connection) -> None:
        conn.execute(
            fan_tags.insert(),
            [
                {"contact_id": a, "tag": "vinyl", "source": "keyword", "created_at": t0},
                {"contact_id": b, "tag": "denver", "source": "keyword", "created_at": t0},
            ],
        )
        for code, bid, fan in (("k1", 7, a), ("k2", 8, b), ("k3", 7, c)):
            lid = conn.execute(
                links.insert().values(
                    code=code,
                    url="https://x.example",
                    contact_id=fan,
                    broadcast_id=bid,
                    created_at=t0,
                )
            ).inserted_primary_key[0]
            conn.execute(
                link_clicks.insert().values(
                    link_id=lid,
                    contact_id=fan,
                    first_at=t0,
                    clicks=1,
                    agent_kind="preview" if fan == c else "human",
                )
            )
        conn.execute(
            events.insert(),
            [
                {"contact_id": fan, "type": "flow_started", "data": {"flow": "profile"}, "at": t0}
                for fan in (a, b)
            ],
        )
        conn.execute(messages.insert().values(  # b answered; a did not
            contact_id=b, direction="in", kind="sms", body="", status="processed",
            created_at=t0 + timedelta(hours=1)))  # fmt: skip

    await store.db.run(write)
    timed = scheduler(store, tmp_path)
    await timed.find(t0 + timedelta(hours=1))
    await timed.find(t0 + timedelta(days=2, minutes=1))
    await timed.find(t0 + timedelta(days=2, minutes=2))  # read again: nothing new
    rows = await store.db.run(
        lambda conn: conn.execute(
            sa.select(flow_jobs.c.flow, flow_jobs.c.contact_id, flow_jobs.c.occurrence)
        ).all()
    )
    got = sorted((f, cid, occ[:1]) for f, cid, occ in rows)
    assert got == sorted([("vinyl_news", a, "v"), ("clicked_tour", a, "k"), ("nudge", a, "e")])
