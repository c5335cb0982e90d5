"""The scripted agent of bench/reply_storm.py: works a reply storm through the inbox, one action at a time.

It reads like a person would (listing topics and bot answers and opening them are free; the
mix's labels stand for reading the texts) and every change is one action: reply to a topic
(with an auto-reply for the texts that join it later), move texts that do not belong, merge two
topics of the same question, teach the bot a topic's answer; and in the *Bot answers* review,
correct a group the bot answered wrong (one follow-up text per fan), move the wrongly answered
texts of a mixed group out first, and teach from a corrected group (its texts become examples
of the intent that should have answered). The action that reaches most fans comes first;
teaching is kept budget for. `HttpInbox` drives the inbox API over HTTP like the browser
(session cookie, CSRF header).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench import conversation_judge as cj
from bench import storm_mix as sm
from bot.flows import read_yaml

AUTO_MINUTES = 120  # the answer also goes to texts that land in the topic for two hours
MIN_TEACH = 2  # texts a topic needs before it is worth teaching (teach refuses fewer)
MIN_FIX = 3  # wrongly answered texts of one question worth a correction
FIX_SHARE = 0.8  # below this share of the group, the wrong ones are moved out first


class ActionRefused(Exception):
    """The inbox said no (4xx): the action was spent all the same."""


class Inbox(Protocol):
    async def topics(self) -> list[dict[str, Any]]: ...
    async def topic(self, topic_id: int) -> dict[str, Any]: ...
    async def reply(self, topic_id: int, body: str) -> dict[str, Any]: ...
    async def move(self, source: int, message_ids: list[int], to: int) -> dict[str, Any]: ...
    async def merge(self, source: int, into: int) -> dict[str, Any]: ...
    async def teach(self, topic_id: int, intent: str, response: str) -> dict[str, Any]: ...
    async def answers(self) -> list[dict[str, Any]]: ...
    async def answer_group(self, group_id: int) -> dict[str, Any]: ...
    async def correct(self, group_id: int, body: str) -> dict[str, Any]: ...
    async def move_answers(self, group_id: int, message_ids: list[int]) -> dict[str, Any]: ...
    async def teach_answers(
        self, group_id: int, intent: str, response: str | None, examples: list[str]
    ) -> dict[str, Any]: ...


@dataclass
class Action:
    kind: str  # reply | move | merge | teach | correct | split (review) | learn (review teach)
    topic_id: int
    category: str
    at_s: float
    result: dict[str, Any] = field(default_factory=dict)


def faq_answers(project: Path) -> dict[str, str]:
    """Answer class -> the demo's own response text (what an agent would paste)."""
    responses = (read_yaml(project / "domain.yml") or {}).get("responses") or {}
    out = {}
    for name, (_, names) in cj.ANSWERS.items():
        for response in sorted(names):
            variants = responses.get(response) or []
            if (
                variants
                and isinstance(variants[0], dict)
                and "{" not in variants[0].get("text", "{")
            ):
                out[name] = variants[0]["text"]
    return out


class ScriptedAgent:
    def __init__(
        self, inbox: Inbox, labels: dict[int, sm.Phrase], mix: sm.Mix, faqs: dict[str, str],
        *, budget: int = 30, min_size: int = 1, merge_size: int = 3,
    ) -> None:  # fmt: skip
        self.inbox, self.labels, self.mix, self.faqs = inbox, labels, mix, faqs
        self.budget, self.min_size, self.merge_size = budget, min_size, merge_size
        self._seen: dict[int, tuple[int, list[dict[str, Any]]]] = {}  # topic -> (size, texts)
        self.actions: list[Action] = []
        self.replied: dict[str, list[tuple[int, int]]] = {}  # category -> (topic, texts) answered
        self.taught: set[str] = set()  # categories the bot was taught
        self.tried: set[str] = set()  # categories a teach was tried for (refused ones too)
        self.handled: set[int] = set()  # topics replied to (or nothing to answer them with)
        self.reply_category: dict[int, str] = {}  # reply id -> the category it answered
        self.correction_category: dict[int, str] = {}  # correction id -> the category it answered
        self._groups: dict[int, tuple[int, dict[str, Any]]] = {}  # answer group -> (size, page)
        self.reviewed: set[int] = set()  # answer groups acted on (or judged right)
        self.to_learn: list[tuple[int, str, list[str]]] = []  # (group, category, texts) to teach

    def answer(self, category: str) -> str | None:
        if category in self.mix.topic_names:
            return "Hi {first_name}! " + self.mix.topic(category).answer
        if category == sm.SMALL_TALK_CATEGORY:
            return self.mix.small_talk_answer
        return self.faqs.get(category)

    @property
    def left(self) -> int:
        return self.budget - len(self.actions)

    async def step(self, at_s: float) -> Action | None:
        """Take one action (None: nothing worth doing now)."""
        if self.left <= 0:
            return None
        open_ = await self._open_topics()
        fixes = await self._wrong_answers()
        to_teach = [c for c, done in self.replied.items() if c in self.mix.topic_names
                    and c not in self.tried and max(n for _, n in done) >= MIN_TEACH]  # fmt: skip
        # a corrected group is taught from once its question's topic was (or cannot be)
        learn = [x for x in self.to_learn if x[1] in self.tried or x[1] not in self.replied]
        pending = len(to_teach) + len(self.to_learn)
        if pending and (not (open_ or fixes) or self.left <= pending) and (to_teach or learn):
            if to_teach:
                return await self._teach(to_teach[0], at_s)
            return await self._learn(learn[0], at_s)
        if fixes and (not open_ or fixes[0][0] > len(open_[0][2])):
            return await self._fix(fixes[0], at_s)
        if not open_:
            return None
        (tid, category, texts), others = open_[0], open_[1:]
        reserve = pending + (category in self.mix.topic_names and category not in self.tried)
        spare = self.left - 1 - reserve - len(fixes)
        if spare > 0 and (move := self._strays(tid, category, texts, others)):
            ids, dest, dest_category = move
            return await self._act(Action("move", dest, dest_category, at_s),
                                   self.inbox.move(tid, ids, dest))  # fmt: skip
        same = [o for o in others if o[1] == category and len(o[2]) >= self.merge_size]
        if spare > 0 and same and category in self.mix.topic_names:
            return await self._act(Action("merge", tid, category, at_s),
                                   self.inbox.merge(same[0][0], tid))  # fmt: skip
        return await self._reply(tid, category, len(texts), at_s)

    async def _open_topics(self) -> list[tuple[int, str, list[dict[str, Any]]]]:
        """(id, majority category, texts) of the open topics worth answering, largest first."""
        out = []
        for s in await self.inbox.topics():
            if s["status"] != "open" or s["size"] < self.min_size or s["id"] in self.handled:
                continue
            texts = await self._texts(s["id"], s["size"])
            counts = Counter(self._category(t) for t in texts)
            if not counts:
                continue
            category = counts.most_common(1)[0][0]
            if self.answer(category) is None:
                self.handled.add(s["id"])  # opt-outs, flows with no single answer: not for a reply
                continue
            out.append((s["id"], category, texts))
        return sorted(out, key=lambda o: -len(o[2]))

    # ---- the Bot answers review ---------------------------------------------------------------

    def answered_right(self, text: dict[str, Any], responses: set[str]) -> bool | None:
        """What a person reading the fan's text and the bot's answer would say: right, wrong,
        or None (the text is not the mix's; nothing to judge). The mix's labels stand for the
        reading, as they do for topics."""
        p = self.labels.get(int(text["message_id"]))
        if p is None or p.kind == sm.OPT_OUT:
            return None
        taught = {t.name for t in self.mix.topics if f"utter_{t.intent}" in responses}
        if p.kind == "topics":  # only an answer taught for the question knows it
            return bool(taught & set(p.accepted))
        said = {c for c, (_, names) in cj.ANSWERS.items() if names & responses}
        if p.kind == "small_talk":  # an FAQ answer to "love u nova" answers nothing asked
            return not (said | taught) - sm.SMALL_TALK - cj.LIGHT
        return bool(said & set(p.accepted))

    async def _wrong_answers(self) -> list[tuple[int, int, str, list[int], int]]:
        """(fans to right, group, category, its wrongly answered texts, group size) of the open
        answer groups where the bot answered one question wrong, most such fans first."""
        out = []
        for g in await self.inbox.answers():
            if g["status"] != "open" or g["id"] in self.reviewed:
                continue
            size = int(g["size"])
            seen = self._groups.get(g["id"])
            if seen is None or seen[0] != size:
                seen = (size, await self.inbox.answer_group(g["id"]))
                self._groups[g["id"]] = seen
            texts = [t for t in seen[1]["texts"] if not t["corrected"]]
            responses = set(g["response"].split(" + "))
            wrong: dict[str, list[int]] = {}
            for t in texts:
                if self.answered_right(t, responses) is False:
                    wrong.setdefault(self._category(t), []).append(int(t["message_id"]))
            fixable = [(len(ids), c, ids) for c, ids in wrong.items() if self.answer(c)]
            if not fixable:  # right so far, or nothing one text could fix
                continue
            n, category, ids = max(fixable)
            if n >= MIN_FIX:
                out.append((n, g["id"], category, ids, len(texts)))
        return sorted(out, key=lambda o: -o[0])

    async def _fix(self, fix: tuple[int, int, str, list[int], int], at_s: float) -> Action:
        """Correct the group (its wrong ones are most of it), else move them into their own."""
        n, gid, category, ids, size = fix
        if n < FIX_SHARE * size:
            return await self._act(Action("split", gid, category, at_s),
                                   self.inbox.move_answers(gid, ids))  # fmt: skip
        self.reviewed.add(gid)
        action = await self._act(Action("correct", gid, category, at_s),
                                 self.inbox.correct(gid, self.answer(category) or ""))  # fmt: skip
        if action.result.get("correction_id") is not None:
            self.correction_category[int(action.result["correction_id"])] = category
            if category in self.mix.topic_names:  # the bot should answer these itself next time
                texts = [t["body"] for t in self._groups[gid][1]["texts"]
                         if int(t["message_id"]) in set(ids)]  # fmt: skip
                self.to_learn.append((gid, category, texts))
        return action

    async def _learn(self, item: tuple[int, str, list[str]], at_s: float) -> Action:
        """Teach from a corrected group: its texts (the ones that belong) as examples of the
        topic's intent, or a new FAQ when no topic of that question was taught."""
        self.to_learn.remove(item)
        gid, category, texts = item
        topic = self.mix.topic(category)
        new = category not in self.taught
        self.tried.add(category)
        action = await self._act(
            Action("learn", gid, category, at_s),
            self.inbox.teach_answers(gid, topic.intent, topic.answer if new else None, texts),
        )
        if "error" not in action.result:
            self.taught.add(category)
        return action

    async def _texts(self, topic_id: int, size: int) -> list[dict[str, Any]]:
        """The topic's texts as its page shows them (opened again only when its size changed)."""
        seen = self._seen.get(topic_id)
        if seen is None or seen[0] != size:
            seen = (size, (await self.inbox.topic(topic_id))["texts"])
            self._seen[topic_id] = seen
        return seen[1]

    def _category(self, text: dict[str, Any]) -> str:
        p = self.labels.get(int(text["message_id"]))
        return p.category if p else "unknown"

    def _strays(
        self, tid: int, category: str, texts: list[dict[str, Any]], others: list[Any]
    ) -> tuple[list[int], int, str] | None:
        """The biggest group of texts in the topic that another open topic answers better."""
        strays: dict[str, list[int]] = {}
        for t in texts:
            p = self.labels.get(int(t["message_id"]))
            if p and category not in p.accepted:
                strays.setdefault(p.category, []).append(int(t["message_id"]))
        home = {c: oid for oid, c, _ in reversed(others)}  # the largest topic of each category
        movable = [(len(ids), c, ids) for c, ids in strays.items() if c in home]
        if not movable:
            return None
        n, c, ids = max(movable)
        return (ids, home[c], c) if n >= max(3, 0.05 * len(texts)) else None

    async def _reply(self, tid: int, category: str, size: int, at_s: float) -> Action:
        self.handled.add(tid)
        action = await self._act(Action("reply", tid, category, at_s),
                                 self.inbox.reply(tid, self.answer(category) or ""))  # fmt: skip
        if action.result.get("reply_id") is not None:
            self.replied.setdefault(category, []).append((tid, size))
            self.reply_category[int(action.result["reply_id"])] = category
        return action

    async def _teach(self, category: str, at_s: float) -> Action:
        topic = self.mix.topic(category)
        tid = max(self.replied[category], key=lambda d: d[1])[0]  # the largest topic answered
        self.tried.add(category)
        action = await self._act(Action("teach", tid, category, at_s),
                                 self.inbox.teach(tid, topic.intent, topic.answer))  # fmt: skip
        if "error" not in action.result:
            self.taught.add(category)
        return action

    async def _act(self, action: Action, call: Any) -> Action:
        """One POST: counted whether the inbox takes it or refuses it."""
        self.actions.append(action)
        try:
            action.result = await call
        except ActionRefused as exc:
            action.result = {"error": str(exc)}
        return action


class HttpInbox:
    """The inbox API over HTTP, as the browser uses it: a session cookie, a CSRF header."""

    def __init__(self, client: httpx.AsyncClient, csrf: str):
        self.client = client
        self.headers = {"X-CSRF-Token": csrf}

    @classmethod
    async def login(cls, base_url: str, username: str, password: str) -> HttpInbox:
        client = httpx.AsyncClient(base_url=base_url, timeout=600, headers={"Origin": base_url})
        r = await client.post("/api/v1/session", json={"username": username, "password": password})
        r.raise_for_status()
        return cls(client, r.json()["csrf_token"])

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _get(self, path: str, **params: Any) -> Any:
        r = await self.client.get(path, params=params)
        r.raise_for_status()
        return r.json()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post(path, json=body, headers=self.headers)
        if 400 <= r.status_code < 500:
            raise ActionRefused(f"{r.status_code} {r.text[:200]}")
        r.raise_for_status()
        return r.json()

    async def topics(self) -> list[dict[str, Any]]:
        return (await self._get("/api/v1/topics", order="size", limit=500))["items"]

    async def topic(self, topic_id: int) -> dict[str, Any]:
        return await self._get(f"/api/v1/topics/{topic_id}")

    async def reply(self, topic_id: int, body: str) -> dict[str, Any]:
        return await self._post(f"/api/v1/topics/{topic_id}/reply",
                                {"body": body, "request_key": uuid.uuid4().hex,
                                 "auto_minutes": AUTO_MINUTES})  # fmt: skip

    async def move(self, source: int, message_ids: list[int], to: int) -> dict[str, Any]:
        return await self._post(
            f"/api/v1/topics/{source}/move", {"message_ids": message_ids, "to": to}
        )

    async def merge(self, source: int, into: int) -> dict[str, Any]:
        return await self._post(f"/api/v1/topics/{source}/merge", {"into": into})

    async def teach(self, topic_id: int, intent: str, response: str) -> dict[str, Any]:
        return await self._post("/api/v1/teach",
                                {"topic_id": topic_id, "intent": intent, "response": response})  # fmt: skip

    async def answers(self) -> list[dict[str, Any]]:
        return (await self._get("/api/v1/answers", status="open", limit=500))["items"]

    async def answer_group(self, group_id: int) -> dict[str, Any]:
        return await self._get(f"/api/v1/answers/{group_id}")

    async def correct(self, group_id: int, body: str) -> dict[str, Any]:
        return await self._post(f"/api/v1/answers/{group_id}/correct",
                                {"body": body, "request_key": uuid.uuid4().hex})  # fmt: skip

    async def move_answers(self, group_id: int, message_ids: list[int]) -> dict[str, Any]:
        return await self._post(f"/api/v1/answers/{group_id}/move",
                                {"message_ids": message_ids, "to": None})  # fmt: skip

    async def teach_answers(
        self, group_id: int, intent: str, response: str | None, examples: list[str]
    ) -> dict[str, Any]:
        return await self._post(f"/api/v1/answers/{group_id}/teach",
                                {"intent": intent, "response": response, "examples": examples})  # fmt: skip


@contextlib.asynccontextmanager
async def _refusals() -> AsyncIterator[None]:
    """The service's 4xx errors, as the API would answer them."""
    from bot.errors import HttpError

    try:
        yield
    except HttpError as exc:
        if exc.status >= 500:
            raise
        raise ActionRefused(f"{exc.status} {exc}") from None


class ServiceInbox:
    """The same actions through the service functions the API calls (no HTTP in between)."""

    def __init__(self, db: Any, agent: Any, teacher: Any):
        from bot.topics import service

        self.db, self.agent, self.teacher, self.topics_ = db, agent, teacher, service

    async def topics(self) -> list[dict[str, Any]]:
        found = await self.topics_.list_topics(self.db, status="open", order="size", limit=500)
        return [t.to_json() for t in found]

    async def topic(self, topic_id: int) -> dict[str, Any]:
        return (await self.topics_.topic(self.db, topic_id)).to_json()

    async def reply(self, topic_id: int, body: str) -> dict[str, Any]:
        async with _refusals():
            done = await self.topics_.reply_to_topic(
                self.db, self.agent, topic_id, body, request_key=uuid.uuid4().hex,
                auto_minutes=AUTO_MINUTES,
            )  # fmt: skip
        return done.to_json()

    async def move(self, source: int, message_ids: list[int], to: int) -> dict[str, Any]:
        async with _refusals():
            moved = await self.topics_.move_texts(self.db, self.agent, message_ids, to)
        return {"to": moved, "moved": len(message_ids)}

    async def merge(self, source: int, into: int) -> dict[str, Any]:
        async with _refusals():
            await self.topics_.merge(self.db, self.agent, source, into)
        return {"topic_id": into}

    async def teach(self, topic_id: int, intent: str, response: str) -> dict[str, Any]:
        from bot.teach import service

        async with _refusals():
            await service.teach(self.db, self.teacher, self.agent, topic_id=topic_id,
                                intent=intent, response=response)  # fmt: skip
        await self.teacher.wait()
        return {"intent": intent}

    async def answers(self) -> list[dict[str, Any]]:
        from bot.topics import review

        return [g.to_json() for g in await review.list_groups(self.db, status="open", limit=500)]

    async def answer_group(self, group_id: int) -> dict[str, Any]:
        from bot.topics import review

        return (await review.group(self.db, group_id)).to_json()

    async def correct(self, group_id: int, body: str) -> dict[str, Any]:
        from bot.topics import review

        async with _refusals():
            done = await review.correct(self.db, self.agent, group_id, body,
                                        request_key=uuid.uuid4().hex)  # fmt: skip
        return done.to_json()

    async def move_answers(self, group_id: int, message_ids: list[int]) -> dict[str, Any]:
        from bot.topics import review

        async with _refusals():
            to = await review.move_texts(self.db, self.agent, message_ids, None)
        return {"to": to, "moved": len(message_ids)}

    async def teach_answers(
        self, group_id: int, intent: str, response: str | None, examples: list[str]
    ) -> dict[str, Any]:
        from bot.topics import review

        async with _refusals():
            taught = await review.teach(self.db, self.teacher, self.agent, group_id,
                                        intent=intent, response=response, examples=examples)  # fmt: skip
        await self.teacher.wait()
        return taught.to_json()
