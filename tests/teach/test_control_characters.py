"""A fan text holding a control character (C1 U+009B, a terminal's escape; C0) still teaches its
topic: texts are cleaned at the one door they come in by (`InboundSms`, bot.messages), so the
content files the teach step writes stay valid YAML (issue 16, item 7)."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.runtime import Runtime
from bot.teach import Teacher, teach
from bot.teach.content_writer import NLU_FILE
from tests.teach.test_teach import ADMIN, add_topic, runtime, send, subscribed_fan  # noqa: F401

TEXTS = ["where can i park\x9b for the show", "how much is parking\x85 at the venue",
         "is there a parking\x1b garage near the arena"]  # fmt: skip


async def test_a_text_with_control_characters_teaches_its_topic(runtime: Runtime) -> None:  # noqa: F811
    fan = await subscribed_fan(runtime)
    asked = [await send(runtime, fan, text) for text in TEXTS]
    topic = add_topic(runtime, [o.message_id for o in asked])
    teacher = Teacher.for_runtime(runtime)
    teacher.autotrain = False
    taught = await teach(runtime.store.db, teacher, ADMIN, topic_id=topic, intent="ask_parking",
                         response="Lots A-C open 3 hours before doors.")  # fmt: skip
    assert len(taught.examples) == len(TEXTS)
    for example in taught.examples:
        assert not any(0x80 <= ord(c) <= 0x9F or ord(c) < 0x20 for c in example)
    written = yaml.safe_load(Path(runtime.settings.project_dir, NLU_FILE).read_text())
    assert written  # the file the teach step wrote reads back
