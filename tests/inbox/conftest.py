"""Inbox fixtures: escalations made through the production store, agents through `Auth`."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sanic import Sanic

from bot.domain import EscalationSpec, TurnRecord
from bot.inbox import LiveHub, inbox_blueprints
from bot.inbox.auth import Agent, Auth
from bot.messages import InboundSms, OutboundSms
from bot.settings import Settings
from bot.storage import Store
from bot.testing import serve_in_process

US = "+15005550006"
PASSWORD = "correct horse battery"
# argon2id still, but cheap: the default profile costs ~0.25 s per hash on this machine
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_sids = itertools.count(1)
_apps = itertools.count()


def fan(n: int) -> str:
    return f"+1555555{n:04d}"


async def escalate(
    store: Store,
    phone: str,
    body: str = "can I talk to someone?",
    *,
    reason: str = "fan_asked",
    priority: str = "normal",
    guesses: tuple[tuple[str, float], ...] = (("human_handoff", 0.91),),
    due_at: datetime | None = None,
) -> int:
    """A fan's text that the pipeline escalated: the same writes `finish_turn` makes."""
    rec = await store.record_inbound(InboundSms(f"SM{next(_sids):032d}", phone, US, body))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(
        TurnRecord(
            rec.contact.id, ctx.conversation_id, rec.message_id,
            events=[("intent", {"intent": guesses[0][0] if guesses else None,
                                "confidence": guesses[0][1] if guesses else 0.0}),
                    ("escalated", {"reason": reason, "priority": priority})],
            replies=[OutboundSms(phone, "A real person will text you back.", sender=US)],
            escalation=EscalationSpec(reason, priority, guesses, due_at),
        )
    )  # fmt: skip
    return ctx.conversation_id


async def fan_texts_again(store: Store, phone: str, body: str) -> int:
    """A later text while an agent owns the thread: held, as the pipeline does."""
    rec = await store.record_inbound(InboundSms(f"SM{next(_sids):032d}", phone, US, body))
    ctx = await store.load_turn(rec.contact.id)
    await store.finish_turn(
        TurnRecord(rec.contact.id, ctx.conversation_id, rec.message_id,
                   events=[("held_for_human", {"status": ctx.status})],
                   status="open" if ctx.status == "snoozed" else None, inbound_status="held",
                   attach_to_escalation=True)
    )  # fmt: skip
    return rec.message_id


@dataclass
class Team:
    auth: Auth
    admin: Agent
    ana: Agent
    ben: Agent


@pytest.fixture
async def team(store: Store) -> AsyncIterator[Team]:
    auth = Auth(store.db, b"test-secret", hasher=FAST_HASHER)
    admin = await auth.create_agent("root", PASSWORD, role="admin", display_name="Robin Admin")
    ana = await auth.create_agent("ana", PASSWORD, display_name="Ana")
    ben = await auth.create_agent("ben", PASSWORD, display_name="Ben")
    yield Team(auth, admin, ana, ben)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with canned replies and an inbox section in config.yml."""
    (tmp_path / "canned_replies.yml").write_text(
        "canned_replies:\n  hello:\n    title: Hello\n    text: Hi {first_name}, it's Ana.\n"
    )
    return tmp_path


@dataclass
class Server:
    url: str
    hub: LiveHub
    woken: list[int]


@pytest.fixture
async def server(store: Store, team: Team, project: Path) -> AsyncIterator[Server]:
    """The inbox's pages and API on 127.0.0.1; `woken` counts wake-ups of the outbox sender."""
    settings = Settings(project_dir=project, database_url=store.db.url, secret_key=b"test-secret")
    hub, woken = LiveHub(), []
    app = Sanic(f"inbox_api_{next(_apps)}")
    for bp in inbox_blueprints(db=store.db, settings=settings, hub=hub,
                               notify_outbox=lambda: woken.append(1)):  # fmt: skip
        app.blueprint(bp)
    async with serve_in_process(app) as url:
        yield Server(url, hub, woken)


@asynccontextmanager
async def logged_in(url: str, username: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        r = await client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield client, r.json()["csrf_token"]
