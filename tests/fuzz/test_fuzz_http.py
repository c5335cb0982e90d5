"""Hostile and odd input over real HTTP, on the whole server: the Twilio webhook, the signup form
and the inbox API. Never a 5xx, never a traceback; a text that was acknowledged is stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.audience.signup import SignupLinks
from tests.app.stack import OUR_NUMBER, Stack, running_stack

from .conftest import Tracebacks

PHONE = st.from_regex(r"\A\+1[2-9]\d{9}\Z")
ODD_TEXT = st.text(max_size=2000) | st.sampled_from(
    ["", "\x00", "a\x00b", "STOP\x00", "💀" * 400, "\ufeffhi", "\u202eevil", "x" * 5000, "%FF%FE"]
)
FIELD = st.text(max_size=40) | st.sampled_from(["", "0", "-1", "11", "abc", "\x00", "1e9"])


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    async for s in running_stack(database_url):
        yield s


def no_tracebacks(log: Tracebacks) -> None:
    leaked = [r for r in log.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not leaked, [r.getMessage()[:200] for r in leaked]


@given(sender=PHONE | FIELD, body=ODD_TEXT, num_media=FIELD | st.just("0"), sid=FIELD)
async def test_signed_webhooks_with_any_fields(
    stack: Stack, tracebacks: Tracebacks, sender: str, body: str, num_media: str, sid: str
) -> None:
    sid = sid if sid.startswith("SM") else f"SM{uuid.uuid4().hex}"
    r = await stack.text(sender, body, sid=sid, NumMedia=num_media)
    assert r.status_code in (200, 400), (r.status_code, r.text[:200])
    if r.status_code == 200:  # acknowledged: then it is durable
        assert await stack.store.db.run(_stored, sid)
    no_tracebacks(tracebacks)


@given(raw=st.binary(max_size=600),
       signature=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40))  # fmt: skip
async def test_raw_bodies_and_forged_signatures(
    stack: Stack, tracebacks: Tracebacks, raw: bytes, signature: str
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": signature}  # fmt: skip
    r = await stack.http.post("/webhooks/twilio/sms", content=raw, headers=headers)
    assert r.status_code in (400, 403), r.status_code
    no_tracebacks(tracebacks)


@given(form=st.dictionaries(st.sampled_from(
    ["first_name", "birthday", "country", "zip", "email", "age_ok", "consent", "nonce", "x"]),
    FIELD | ODD_TEXT, max_size=9), token=st.booleans())  # fmt: skip
async def test_signup_form_with_any_fields(
    stack: Stack, tracebacks: Tracebacks, form: dict[str, str], token: bool
) -> None:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    await stack.text(number, "hi")
    contact = await stack.store.contact_by_phone(number)
    link = SignupLinks(stack.app.ctx.settings)(contact.id) if token else "not-a-token"
    path = "/join/" + link.rsplit("/", 1)[-1]
    page = await stack.http.get(path)
    assert page.status_code < 500
    r = await stack.http.post(path, data=form)
    assert r.status_code < 500, r.status_code
    no_tracebacks(tracebacks)


@given(action=st.sampled_from(["claim", "reply", "notes", "tags", "resolve", "snooze",
                               "reassign", "nope"]),
       body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ODD_TEXT,
                         lambda kids: st.lists(kids, max_size=3)
                         | st.dictionaries(st.sampled_from(
                             ["body", "add", "remove", "minutes", "until", "agent_id"]), kids,
                             max_size=4), max_leaves=8))  # fmt: skip
async def test_inbox_api_with_any_json(
    stack: Stack, admin: httpx.AsyncClient, tracebacks: Tracebacks, action: str, body: object
) -> None:
    conv = await _conversation(stack)
    r = await admin.post(f"/api/v1/conversations/{conv}/{action}", json=body,
                         headers={"X-CSRF-Token": admin.headers["x-test-csrf"]})  # fmt: skip
    assert r.status_code < 500, (r.status_code, r.text[:200])
    no_tracebacks(tracebacks)


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    from bot.inbox.auth import Auth

    password = "fuzzing-password-1"
    auth = Auth(stack.store.db, b"x")
    await auth.create_agent("fuzz", password, role="admin")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        r = await client.post("/api/v1/session", json={"username": "fuzz", "password": password})
        assert r.status_code == 200, r.text
        client.headers["x-test-csrf"] = r.json()["csrf_token"]
        yield client


async def _conversation(stack: Stack) -> int:
    number = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    await stack.text(number, "I want to talk to a real person please")
    contact = await stack.store.contact_by_phone(number)
    return int(await stack.store.db.run(_conversation_of, contact.id))


def _stored(conn: object, sid: str) -> bool:
    import sqlalchemy as sa

    from bot.storage.tables import messages

    q = sa.select(messages.c.id).where(messages.c.channel_id == sid)
    return conn.execute(q).first() is not None  # type: ignore[attr-defined]


def _conversation_of(conn: object, contact_id: int) -> int:
    from bot.storage import inbox_store

    return inbox_store.conversation_of_contact(conn, contact_id)  # type: ignore[arg-type]


__all__ = ["OUR_NUMBER"]
