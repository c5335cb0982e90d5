"""The webhook when storage fails or the server is stopping, and what a text may carry in:
a database error answers 503 ("not stored, send again") and echoes nothing; a status callback
against a closed store is a 503, not a traceback; C1 control characters are cleaned like NUL;
a first name that is a link never reaches a welcome text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from sanic import Sanic
from twilio.request_validator import RequestValidator

from bot.audience.signup import validate_form
from bot.channels.twilio_webhook import NOT_STORED, parse_inbound, webhook_blueprint
from bot.messages import REPLACEMENT, InboundSms
from bot.storage import Store
from bot.testing import serve_in_process

from .conftest import load_form

TOKEN = "hardening-token"
PUBLIC = "https://fans.example.com"
_apps = iter(range(10_000))


def signed(path: str, form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)}


async def _serve(store: Store) -> AsyncIterator[str]:
    async def handle(msg: InboundSms, *, budget: float) -> Any:
        await store.begin_turn(msg)  # the real first step: record the text
        raise AssertionError("the database is broken in this test")

    app = Sanic(f"hardening_{next(_apps)}")
    app.blueprint(
        webhook_blueprint(
            handle, store.apply_delivery_report, auth_token=TOKEN, public_base_url=PUBLIC
        )
    )
    async with serve_in_process(app) as url:
        yield url


@pytest.fixture
async def broken(store: Store, database_url: str) -> AsyncIterator[str]:
    """A webhook over a real store whose database fails: SQLite with its tables gone (an
    OperationalError), PostgreSQL after the store was closed (as during shutdown)."""
    if database_url.startswith("sqlite"):
        await store.db.run(lambda c: c.exec_driver_sql("DROP TABLE messages"))
    else:
        store.close()
    async for url in _serve(store):
        yield url


async def test_a_text_the_database_cannot_take_is_answered_503_echoing_nothing(
    broken: str, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("a closed store is the shutdown case, covered by the status callback")
    form = load_form("sms_basic")
    path = "/webhooks/twilio/sms"
    async with httpx.AsyncClient(base_url=broken) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 503 and answer.text == NOT_STORED
    assert form["From"][-4:] not in answer.text and "show" not in answer.text


async def test_a_status_callback_the_store_cannot_take_is_a_503_not_a_crash(broken: str) -> None:
    form = load_form("status_delivered")
    path = "/webhooks/twilio/status"
    async with httpx.AsyncClient(base_url=broken) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 503 and answer.text == NOT_STORED


@pytest.mark.parametrize("control", ["\u009b", "\u0085", "\u0090", "\x1b", "\x00"])
def test_c0_and_c1_controls_are_cleaned_like_nul(control: str) -> None:
    form = load_form("sms_basic") | {"Body": f"teach me{control}[31m now"}
    body = parse_inbound(form).body
    assert control not in body and body == f"teach me{REPLACEMENT}[31m now"


@pytest.mark.parametrize(
    "name", ["http://evil.example/x", "evil.example", "www.evil", "a@evil", "x/y"]
)
def test_a_first_name_that_a_phone_would_show_as_a_link_is_refused(name: str) -> None:
    form = {"first_name": name, "birthday": "2001-03-14", "country": "US", "zip": "94105",
            "age_ok": "yes", "consent": "yes"}  # fmt: skip
    _, errors = validate_form(form, date(2026, 1, 1), 13)
    assert "first_name" in errors
    ok, none = validate_form(form | {"first_name": "St. John"}, date(2026, 1, 1), 13)
    assert none == {} and ok["first_name"] == "St. John"
