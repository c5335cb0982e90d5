"""A whole server on 127.0.0.1 for tests: signed Twilio webhooks in, the real SDK out."""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.settings import Settings, load_settings
from bot.storage.tables import messages
from bot.testing import bind_local, serve_in_process, url_of
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioServer
from tests.conftest import ROOT

OUR_NUMBER = "+15005550006"
# for tests that read the inline TwiML answer: a reply budget no turn reaches, even on a loaded
# machine (a bound on waiting, not a speed claim); the default 2 s is what production gets
INLINE_BUDGET_S = 120.0


def fan() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


def sid() -> str:
    return f"SM{uuid.uuid4().hex}"


def settings_for(database_url: str, twilio_url: str = "", url: str = "", **env: str) -> Settings:
    return load_settings(
        ROOT,
        env={
            "FANLINE_DATABASE_URL": database_url,
            "FANLINE_SECRET_KEY": "test",
            "FANLINE_PUBLIC_URL": url or "http://127.0.0.1:1",
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "TWILIO_NUMBER": OUR_NUMBER,
            "TWILIO_API_BASE_URL": twilio_url or "http://127.0.0.1:1",
            **env,
        },
    )


@dataclass
class Stack:
    url: str
    app: Any
    twilio: TwilioServer
    http: httpx.AsyncClient

    @property
    def store(self) -> Any:
        return self.app.ctx.runtime.store

    def form(
        self, sender: str, body: str, *, message_sid: str | None = None, **extra: str
    ) -> dict[str, str]:
        return {"From": sender, "To": OUR_NUMBER, "Body": body, "NumMedia": "0",
                "MessageSid": message_sid or sid(), "AccountSid": TEST_ACCOUNT_SID, **extra}  # fmt: skip

    async def text(
        self, sender: str, body: str, *, sid: str | None = None, **extra: str
    ) -> httpx.Response:
        form = self.form(sender, body, message_sid=extra.pop("message_sid", None) or sid, **extra)
        return await self.post("/webhooks/twilio/sms", form)

    async def answer(self, sender: str, body: str, **extra: str) -> str:
        """What the fan receives for a text: the inline TwiML's messages, or, when the turn ran
        past the reply budget (a loaded machine, or `reply_budget_s=0`), the texts the sender
        then delivered through the SDK. Waits on those texts (bounded), never on time."""
        before = len(self.twilio.accepted(sender))
        response = await self.text(sender, body, **extra)
        assert response.status_code == 200, response.status_code
        if "<Message>" in response.text:
            return html.unescape(response.text)
        await self.twilio.wait_accepted(before + 1, to=sender, timeout=30)
        # the turn committed its replies before the sender sent any: now all of them are known
        *_, row = await self.inbound(sender)
        count = len(await self.store.replies_to(row.id))
        sent = await self.twilio.wait_accepted(before + count, to=sender, timeout=30)
        return "\n".join(str(m["body"]) for m in sent[before:])

    async def sent_after(self, sender: str, before: int) -> dict[str, Any]:
        """The next text accepted for `sender` after the first `before` (bounded wait)."""
        sent = await self.twilio.wait_accepted(before + 1, to=sender, timeout=30)
        return sent[before]

    async def post(
        self, path: str, form: dict[str, str], signature: str | None = None
    ) -> httpx.Response:
        sig = signature or RequestValidator(TEST_AUTH_TOKEN).compute_signature(
            self.url + path, form
        )
        return await self.http.post(path, data=form, headers={"X-Twilio-Signature": sig})

    async def inbound(self, sender: str) -> list[Any]:
        """The fan's inbound rows, oldest first."""
        return await self.store.db.run(
            lambda c: c.execute(
                sa.select(messages)
                .where(messages.c.from_number == sender, messages.c.direction == "in")
                .order_by(messages.c.id)
            ).all()
        )


async def running_stack(database_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    twilio = TwilioServer()
    async with serve_in_process(twilio.app) as twilio_url:
        sock = bind_local()
        settings = replace(settings_for(database_url, twilio_url, url_of(sock)), **overrides)
        app = create_app(settings, name=f"fanline_{uuid.uuid4().hex[:8]}")
        async with (
            serve_in_process(app, sock) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            yield Stack(url, app, twilio, http)
        await twilio.aclose()


@contextmanager
def writes_blocked(database_url: str) -> Iterator[None]:
    """Another client holds the database's write lock (SQLite) or the messages table's
    (PostgreSQL): nothing can record a text until the block ends."""
    from bot.storage.db import normalise_url

    engine = sa.create_engine(normalise_url(database_url))
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            conn.begin()
            conn.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()
