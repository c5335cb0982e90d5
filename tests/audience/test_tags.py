"""Keywords that tag (issue 18 item 3): a keyword flow's `tag:` and a `- tag:` step become
fan_tags rows in the turn's transaction; agents tag and untag; segments select by tag (old
profile-only tags still count); erasure deletes tags and the export lists them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.audience.segments import Segment
from bot.domain import ConsentChange, TurnRecord
from bot.errors import ConfigError
from bot.flows import DialogueState, FlowEngine, TagFan, TurnInput, load_flows
from bot.flows.loader import load_domain
from bot.inbox import queue
from bot.inbox.auth import Agent
from bot.messages import InboundSms
from bot.storage import Store
from bot.storage.broadcast_store import BroadcastStore
from bot.storage.engagement_tables import fan_tags
from bot.storage.fan_records import FanRecords
from tests.broadcasts.helpers import add_fans, number

OUR_NUMBER = "+15550100000"
FLOWS = """\
flows:
  keyword_denver:
    description: DENVER keyword
    keywords: [DENVER]
    tag: Denver
    steps:
      - action: utter_ok
  keyword_vinyl:
    description: VINYL keyword
    keywords: [VINYL]
    steps:
      - tag: vinyl
      - action: utter_ok
"""


def test_a_keyword_flow_and_a_tag_step_tag_the_fan(tmp_path: Path) -> None:
    (tmp_path / "flows.yml").write_text(FLOWS)
    (tmp_path / "domain.yml").write_text("responses:\n  utter_ok:\n    - text: ok\n")
    engine = FlowEngine(
        load_flows([tmp_path / "flows.yml"]), load_domain([tmp_path / "domain.yml"])
    )
    for text, tag, source in (("denver!", "denver", "keyword"), ("VINYL", "vinyl", "flow")):
        progress = engine.turn(DialogueState(), TurnInput(text=text))
        assert [c for c in progress.commands if isinstance(c, TagFan)] == [TagFan(tag, source)]
        assert progress.says() == ["ok"]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("    tag: Denver\n", "    tag: den ver!\n", 5),
        ("      - tag: vinyl\n", "      - tag: '<b>'\n", 12),
    ],
)
def test_a_bad_tag_names_file_and_line(tmp_path: Path, old: str, new: str, line: int) -> None:
    path = tmp_path / "flows.yml"
    path.write_text(FLOWS.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_flows([path])
    assert f"{path}:{line}" in str(err.value) and "a tag is" in str(err.value)


async def turn_with_tags(store: Store, phone: str, tags: list[tuple[str, str]]) -> int:
    """A fan's text answered by a turn that tags them (what the pipeline writes); the fan is
    subscribed (segments only count subscribed fans)."""
    rec = await store.record_inbound(InboundSms(f"SM{uuid.uuid4().hex}", phone, OUR_NUMBER, "x"))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id, tags=tags,
                   consent=ConsentChange("opt_in", "sms_keyword"))
    )  # fmt: skip
    return rec.contact.id


async def tag_rows(store: Store) -> list[tuple[int, str, str]]:
    t = fan_tags.c
    return await store.db.run(
        lambda c: [tuple(r) for r in c.execute(
            sa.select(t.contact_id, t.tag, t.source).order_by(t.contact_id, t.id))]
    )  # fmt: skip


async def test_tags_are_rows_segments_select_and_agents_change(store: Store) -> None:
    [old] = await add_fans(store, [{"phone": number(3), "profile": {"tags": ["denver"]}}])
    a = await turn_with_tags(store, number(1), [("denver", "keyword"), ("vinyl", "flow")])
    await turn_with_tags(store, number(1), [("denver", "keyword")])  # again: still one row
    b = await turn_with_tags(store, number(2), [("vinyl", "flow")])
    await turn_with_tags(store, number(4), [])
    assert await tag_rows(store) == [
        (a, "denver", "keyword"), (a, "vinyl", "flow"), (b, "vinyl", "flow"),
    ]  # fmt: skip
    fan = await store.contact_by_phone(number(1))
    assert fan is not None and fan.fan_fields()["tags"] == ["denver", "vinyl"]  # `fan.tags`

    segments = BroadcastStore(store)
    assert await segments.count(Segment("d", tags=("denver",))) == 2  # a, and old's profile
    assert await segments.count(Segment("dv", tags=("denver", "vinyl"))) == 1
    assert await segments.count(Segment("any", any_tags=("denver", "vinyl"))) == 3
    assert await segments.count(Segment("not", not_tags=("vinyl",))) == 2

    ctx = await store.load_turn(b)
    agent = Agent(1, "ana", "Ana", "agent")
    assert await queue.set_tags(store.db, ctx.conversation_id, agent, ["press"], ["vinyl"]) == [
        "press"
    ]
    assert (b, "press", "agent") in await tag_rows(store)
    assert await segments.count(Segment("v", tags=("vinyl",))) == 1
    assert old not in {r[0] for r in await tag_rows(store)}  # its tag: on the profile only


async def test_erasure_deletes_tags_and_the_export_lists_them(store: Store) -> None:
    fan = await turn_with_tags(store, number(7), [("denver", "keyword")])
    records = FanRecords(store)
    export = await records.export(number(7))
    assert [(t["tag"], t["source"]) for t in export["tags"]] == [("denver", "keyword")]
    await records.erase(number(7))
    assert [r for r in await tag_rows(store) if r[0] == fan] == []
