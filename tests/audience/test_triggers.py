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
from bot.storage.tables import contacts, events, messages
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


async def _vinyl_jobs(store: Store) -> list[tuple[int, str]]:
    j = flow_jobs.c
    return await store.db.run(
        lambda conn: [
            tuple(r)
            for r in conn.execute(
                sa.select(j.contact_id, j.occurrence).where(j.flow == "vinyl_news").order_by(j.id)
            )
        ]
    )


async def test_a_tag_from_a_profile_update_starts_the_tagged_flow_once(
    store: Store, tmp_path: Path
) -> None:
    """A profile update carrying `tags` (a signup's or a turn's) tags the fan like a keyword."""
    t0 = datetime.now(UTC)
    (a,) = await store.db.run(lambda conn: insert_fans(conn, store.phone_hash, [number(1)]))
    await store.db.run(lambda conn: store._update_profile(conn, a, {"tags": ["Vinyl", "<b>"]}))
    timed = scheduler(store, tmp_path)
    await timed.find(t0 + timedelta(seconds=1))
    await timed.find(t0 + timedelta(days=1, seconds=2))
    assert await _vinyl_jobs(store) == [(a, "vinyl")]
    rows = await store.db.run(
        lambda conn: conn.execute(sa.select(fan_tags.c.tag, fan_tags.c.source)).all()
    )
    assert [tuple(r) for r in rows] == [("vinyl", "profile")]  # "<b>" is no tag name


async def test_a_tag_on_the_profile_alone_starts_the_tagged_flow_once(
    store: Store, tmp_path: Path
) -> None:
    """Tags written on the profile alone (before fan_tags, or an import straight into the
    table) join fan_tags at the scheduler's daily look, and fire once per fan and tag."""
    t0 = datetime.now(UTC)
    a, b, c = await store.db.run(
        lambda conn: insert_fans(
            conn, store.phone_hash, [number(i) for i in range(3)],
            profiles=[{"tags": ["vinyl", "denver"]}, {"tags": "VINYL"}, {"first_name": "Cy"}],
        )
    )  # fmt: skip
    timed = scheduler(store, tmp_path)
    await timed.find(t0 + timedelta(seconds=1))
    await timed.find(t0 + timedelta(seconds=2))
    await timed.find(t0 + timedelta(days=1, seconds=3))  # the next day's look: nothing new
    assert await _vinyl_jobs(store) == [(a, "vinyl")]  # b's `tags` is no list: left as it is
    profile = await store.db.run(
        lambda conn: conn.execute(sa.select(contacts.c.profile).where(contacts.c.id == a)).scalar()
    )
    assert profile["tags"] == ["vinyl", "denver"]  # the profile's copy unchanged
