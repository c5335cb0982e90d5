"""A fan's topic data: in their export, gone with their erasure (texts, vectors, turn labels)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from bot.audience.privacy import erase_fan, export_fan
from bot.storage import Store
from bot.storage.topic_tables import topic_texts, turn_labels
from bot.topics import service

from .conftest import Team, ask_all, fan, sweep_for


async def label_turn(store: Store, message_id: int, contact_id: int, agent_id: int) -> None:
    store.db.run_sync(lambda c: c.execute(turn_labels.insert().values(
        message_id=message_id, contact_id=contact_id, agent_id=agent_id, verdict="handover",
        text="is the show on", status="new", created_at=datetime.now(UTC))))  # fmt: skip


async def test_export_holds_the_fans_topic_texts_replies_and_labels(
    store: Store, team: Team
) -> None:
    await ask_all(store)
    await sweep_for(store).run_once()
    top = (await service.list_topics(store.db))[0]
    text = (await service.topic(store.db, top.id)).texts[0]
    await service.reply_to_topic(store.db, team.ana, top.id, "Hi {first_name|you}", quiet=None)
    await label_turn(store, text.message_id, text.contact_id, team.ana.id)
    phone = store.db.run_sync(lambda c: c.execute(sa.text(
        "SELECT phone FROM contacts WHERE id = :i"), {"i": text.contact_id}).scalar())  # fmt: skip
    data = (await export_fan(store, phone))["topics"]
    assert [t["body"] for t in data["texts"]] == [text.body]
    assert data["texts"][0]["topic_label"] == top.label and "vector" not in data["texts"][0]
    assert data["replies"][0]["template"] == "Hi {first_name|you}"
    assert [lab["verdict"] for lab in data["turn_labels"]] == ["handover"]


async def test_erasure_removes_the_fans_topic_texts_and_labels(store: Store, team: Team) -> None:
    await ask_all(store)
    sweep = sweep_for(store)
    await sweep.run_once()
    top = (await service.list_topics(store.db))[0]
    text = (await service.topic(store.db, top.id)).texts[0]
    await label_turn(store, text.message_id, text.contact_id, team.ana.id)
    n = next(i for i in range(24) if store.db.run_sync(lambda c, i=i: c.execute(sa.text(
        "SELECT id FROM contacts WHERE phone = :p"), {"p": fan(i)}).scalar()) == text.contact_id)  # fmt: skip
    await erase_fan(store, fan(n))

    def left(conn):
        return (
            conn.execute(sa.select(sa.func.count()).select_from(topic_texts)
                         .where(topic_texts.c.contact_id == text.contact_id)).scalar(),
            conn.execute(sa.select(sa.func.count()).select_from(turn_labels)).scalar(),
        )  # fmt: skip

    assert store.db.run_sync(left) == (0, 0)
    after = await service.topic(store.db, top.id)
    assert text.message_id not in {t.message_id for t in after.texts}
    assert after.summary.size == top.size - 1
    await sweep.run_once()  # the label is made again from the texts that are left
    assert (await service.topic(store.db, top.id)).summary.label
    assert store.db.run_sync(left) == (0, 0)  # the erased text is not taken in again
