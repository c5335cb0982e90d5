"""The storm's scripted agent works the *Bot answers* review as a person would: it judges each
text by what the bot answered (the mix's labels stand for reading it), corrects a group the bot
answered wrong with one follow-up, moves the wrong ones of a mixed group out first, teaches
from what it corrected, and leaves alone what the bot got right. The figures count a fan whom a
correction answered right."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from bench import reply_storm as bench
from bench import storm_mix as sm
from bench.storm_agent import ScriptedAgent


class FakeInbox:
    """Topics none; bot answers as the review lists them; every write recorded."""

    def __init__(self, groups: dict[int, tuple[str, list[int]]]):
        self.groups = groups  # id -> (the bot's response, its message ids)
        self.calls: list[tuple[Any, ...]] = []

    async def topics(self) -> list[dict[str, Any]]:
        return []

    async def answers(self) -> list[dict[str, Any]]:
        return [{"id": i, "status": "open", "size": len(ids), "response": r}
                for i, (r, ids) in self.groups.items()]  # fmt: skip

    async def answer_group(self, group_id: int) -> dict[str, Any]:
        ids = self.groups[group_id][1]
        return {"texts": [{"message_id": m, "body": f"text {m}", "corrected": False} for m in ids]}

    async def correct(self, group_id: int, body: str) -> dict[str, Any]:
        self.calls.append(("correct", group_id, body))
        del self.groups[group_id]  # no longer open
        return {"correction_id": 100 + group_id, "fans": 4}

    async def move_answers(self, group_id: int, message_ids: list[int]) -> dict[str, Any]:
        self.calls.append(("move", group_id, tuple(message_ids)))
        response, ids = self.groups[group_id]
        self.groups[group_id] = (response, [m for m in ids if m not in message_ids])
        self.groups[99] = (response, list(message_ids))
        return {"to": 99, "moved": len(message_ids)}

    async def teach_answers(self, group_id: int, intent: str, response: str | None,
                            examples: list[str]) -> dict[str, Any]:  # fmt: skip
        self.calls.append(("teach", group_id, intent, response, tuple(examples)))
        return {"intent": intent}


def _phrase(mix: sm.Mix, kind: str, category: str) -> sm.Phrase:
    return next(p for p in mix.phrases() if p.kind == kind and p.category == category)


def test_the_agent_corrects_what_the_bot_answered_wrong_and_teaches_from_it() -> None:
    mix = sm.load_mix()
    meet = _phrase(mix, "topics", "meet_greet")  # "will the meet and greet still happen"
    known = _phrase(mix, "known", "vip")  # the VIP FAQ is right for it
    love = _phrase(mix, "small_talk", "small_talk")
    labels = {1: meet, 2: meet, 3: meet, 4: meet, 5: known, 6: known, 7: known, 8: known,
              9: meet, 10: meet, 11: meet, 12: love, 13: love}  # fmt: skip
    inbox = FakeInbox({
        1: ("utter_meet_greet", [1, 2, 3, 4]),  # the generic FAQ for news it does not know
        2: ("utter_vip", [5, 6, 7, 8, 9, 10, 11]),  # right for 5-8, wrong for 9-11
        3: ("utter_love_you", [12, 13]),  # small talk answered as such: right
    })  # fmt: skip
    agent = ScriptedAgent(inbox, labels, mix, {}, budget=6)  # type: ignore[arg-type]

    async def work() -> list[str]:
        done = []
        while (action := await agent.step(0.0)) is not None:
            done.append(action.kind)
        return done

    kinds = asyncio.run(work())
    answer = "Hi {first_name}! " + mix.topic("meet_greet").answer
    assert inbox.calls[0] == ("correct", 1, answer)  # most wrongly answered fans first
    assert inbox.calls[1] == ("move", 2, (9, 10, 11))  # a mixed group: the wrong ones out
    assert inbox.calls[2] == ("correct", 99, answer)  # ... then corrected alone
    taught = [c for c in inbox.calls if c[0] == "teach"]
    intent = mix.topic("meet_greet").intent
    assert taught[0][2:4] == (intent, mix.topic("meet_greet").answer)  # a new FAQ first
    assert taught[1][2:4] == (intent, None)  # then examples of it
    assert not any(c[1] == 3 for c in inbox.calls)  # right answers are left alone
    assert kinds == ["correct", "split", "correct", "learn", "learn"]
    assert agent.correction_category == {101: "meet_greet", 199: "meet_greet"}


def test_a_fan_a_correction_answered_right_counts_as_right() -> None:
    mix = sm.load_mix()
    meet = _phrase(mix, "topics", "meet_greet")
    fan = bench.Fan(0, 7, "+13035550100", 0.0)
    text = bench.Text(fan, meet, 60.0, 1, verdict=sm.BotVerdict(False, True, False))
    run = bench.Run(fans=1, rate=10.0, texts=[text])

    class Row:
        def __init__(self, **kw: Any):
            self.__dict__.update(kw)

    class Agent:
        actions = [type("A", (), {"kind": "correct", "at_s": 300.0,
                                  "result": {"correction_id": 5}})()]  # fmt: skip
        reply_category: dict[int, str] = {}
        correction_category = {5: "meet_greet"}

    bench.measure_answers(run, Agent(), [], [], [Row(correction_id=5, contact_id=7, message_id=11)])
    assert run.right == 1 and run.right_by_correction == 1 and run.right_by_agent == 0
    assert text.answered_by == "correction" and text.answered_s < math.inf
