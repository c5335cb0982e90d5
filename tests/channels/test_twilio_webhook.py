"""Inbound webhook: parsing recorded forms, signatures (with the SDK's RequestValidator), TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from sanic import Sanic
from twilio.request_validator import RequestValidator

from bot.channels.twilio_webhook import (
    parse_inbound,
    parse_status,
    twiml,
    verify_signature,
    webhook_blueprint,
)
from bot.errors import BadRequest
from bot.messages import DeliveryReport, InboundSms, OutboundSms
from bot.testing import serve_in_process

from .conftest import load_form

TOKEN = "webhook-token-abc"
PUBLIC = "https://fans.example.com"


def test_parse_basic_sms() -> None:
    msg = parse_inbound(load_form("sms_basic"))
    assert msg.channel_id == "SM" + "0" * 31 + "1"
    assert (msg.sender, msg.recipient, msg.body) == (
        "+14155550123",
        "+14155550100",
        "Hi! When is the next show?",
    )
    assert msg.media_urls == () and msg.opt_out_type is None


def test_parse_mms_only() -> None:
    msg = parse_inbound(load_form("mms_only"))
    assert msg.body == ""
    assert len(msg.media_urls) == 2 and msg.media_urls[1].endswith("ME" + "b" * 32)


def test_parse_emoji_and_1600_chars() -> None:
    assert parse_inbound(load_form("emoji")).body == "love you 💖🎤 see you at the gig 🙌"
    assert parse_inbound(load_form("emoji")).sender == "+447700900123"
    assert len(parse_inbound(load_form("long_1600")).body) == 1600


def test_missing_body_is_an_empty_text_not_a_crash() -> None:
    assert parse_inbound(load_form("missing_body")).body == ""


def test_opt_out_type() -> None:
    assert parse_inbound(load_form("opt_out_stop")).opt_out_type == "STOP"


def test_numbers_are_normalised_to_e164() -> None:
    form = load_form("sms_basic") | {"From": "+1 (415) 555-0123", "To": "12345"}
    msg = parse_inbound(form)
    assert (msg.sender, msg.recipient) == ("+14155550123", "12345")  # short codes stay as they are


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"From": "not-a-number"}, "'From'"),
        ({"From": ""}, "'From'"),
        ({"To": "nope"}, "'To'"),
        ({"MessageSid": "", "SmsSid": ""}, "MessageSid"),
        ({"NumMedia": "x"}, "'NumMedia'"),
        ({"NumMedia": "1"}, "'MediaUrl0'"),
        ({"NumMedia": "11"}, "'NumMedia'"),
    ],
)
def test_malformed_forms_are_bad_requests_that_do_not_echo(change: dict, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_inbound(load_form("sms_basic") | change)
    assert field in str(caught.value)
    for value in change.values():
        if value:
            assert value not in str(caught.value).replace(field, "")


def test_parse_status_forms() -> None:
    assert parse_status(load_form("status_delivered")) == DeliveryReport(
        "SM" + "0" * 31 + "8", "delivered"
    )
    assert parse_status(load_form("status_undelivered")).error_code == 30003
    with pytest.raises(BadRequest):
        parse_status(load_form("status_delivered") | {"MessageStatus": "exploded", "SmsStatus": ""})


def test_verify_signature() -> None:
    form = load_form("sms_basic")
    url = PUBLIC + "/webhooks/twilio/sms"
    good = RequestValidator(TOKEN).compute_signature(url, form)
    assert verify_signature(TOKEN, url, form, good)
    assert not verify_signature(TOKEN, url, form | {"Body": "changed"}, good)
    assert not verify_signature("other-token", url, form, good)
    assert not verify_signature(TOKEN, url, form, None)
    assert not verify_signature(TOKEN, url, form, "")


def test_twiml_escapes_and_carries_media() -> None:
    evil = "<script>alert('x')</script> & \"quotes\" ]]>"
    xml = twiml(
        [
            OutboundSms("+1", evil),
            OutboundSms("+1", "pic", media_urls=("https://e.com/a.png?x=1&y=2",)),
        ]
    )
    assert "<script>" not in xml and "&lt;script&gt;" in xml
    root = ET.fromstring(xml)
    messages = root.findall("Message")
    assert messages[0].findtext("Body") == evil
    assert messages[1].findtext("Media") == "https://e.com/a.png?x=1&y=2"
    assert ET.fromstring(twiml([])).tag == "Response" and len(ET.fromstring(twiml([]))) == 0


SDK_TWIML_CASES = [
    [],
    [OutboundSms("+1", "hi")],
    [OutboundSms("+1", "<script>alert('x')</script> & \"quotes\" ]]> &amp; 💖 ñ\n\ttab")],
    [OutboundSms("+1", "", media_urls=("https://e.com/a.png?x=1&y=2",))],
    [OutboundSms("+1", "")],
    [OutboundSms("+1", "a", media_urls=("u1", "u<2>")), OutboundSms("+1", "b > c")],
]


@pytest.mark.parametrize("replies", SDK_TWIML_CASES)
def test_twiml_is_the_sdks_byte_for_byte(replies: list[OutboundSms]) -> None:
    from twilio.twiml.messaging_response import Message, MessagingResponse

    response = MessagingResponse()
    for reply in replies:
        message = Message()
        if reply.body:
            message.body(reply.body)
        for url in reply.media_urls:
            message.media(url)
        response.append(message)
    assert twiml(replies) == str(response)


@pytest.mark.parametrize(
    "url",
    [PUBLIC + "/webhooks/twilio/sms", "https://fans.example.com:443/webhooks/twilio/sms",
     "http://127.0.0.1:5005/webhooks/twilio/sms?x=1&y=%C3%A9"],
)  # fmt: skip
def test_the_signature_fast_path_agrees_with_the_sdk(url: str) -> None:
    from sanic.request import RequestParameters

    form = load_form("sms_basic") | {"Body": "ünïcode & = + 💖", "Empty": ""}
    multi = RequestParameters({k: [v] for k, v in form.items()} | {"Tag": ["b", "a", "b"]})
    sdk = RequestValidator(TOKEN)
    for params in (form, multi):
        good = sdk.compute_signature(url, params)
        assert verify_signature(TOKEN, url, params, good)
        for bad in (good[:-2] + "xx", sdk.compute_signature(url + "x", params), good.lower()):
            assert verify_signature(TOKEN, url, params, bad) == sdk.validate(url, params, bad)
            assert not verify_signature(TOKEN, url, params, bad)
    # what only the SDK's slow path accepts: Twilio signed the URL without its default port
    plain = PUBLIC + "/webhooks/twilio/sms"
    assert verify_signature(TOKEN, plain.replace(".com/", ".com:443/"), form,
                            sdk.compute_signature(plain, form))  # fmt: skip


def test_phone_numbers_normalised_the_same_the_second_time() -> None:
    form = load_form("sms_basic")
    first = parse_inbound(form | {"From": " +1 (415) 555-0123 "})
    assert parse_inbound(form | {"From": " +1 (415) 555-0123 "}).sender == first.sender
    assert first.sender == "+14155550123"
    for _ in range(2):  # a refusal is cached as a refusal
        with pytest.raises(BadRequest):
            parse_inbound(form | {"From": "not a number"})


@dataclass
class Outcome:
    twiml_replies: list[OutboundSms]
    durable: bool = True


@dataclass
class Recorder:
    """Stands in for the pipeline: records what reached it and answers with one reply."""

    seen: list[tuple[InboundSms, float]] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)

    async def handle(self, inbound: InboundSms, *, budget: float) -> Outcome:
        self.seen.append((inbound, budget))
        return Outcome([OutboundSms(inbound.sender, f"got <{len(inbound.media_urls)}> & thanks")])

    async def report(self, report: DeliveryReport) -> None:
        self.reports.append(report)


_apps = iter(range(10_000))


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = Sanic(f"webhook_test_{next(_apps)}")
    app.blueprint(
        webhook_blueprint(
            recorder.handle,
            recorder.report,
            auth_token=TOKEN,
            public_base_url=PUBLIC,
            reply_budget_s=1.5,
        )
    )
    async with serve_in_process(app) as url:
        yield url, recorder


def signed(path: str, form: dict[str, str], base: str = PUBLIC) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(base + path, form)}


@pytest.mark.parametrize("path", ["/webhooks/twilio/sms", "/webhooks/twilio/webhook"])
async def test_signed_inbound_reaches_the_pipeline_and_gets_twiml(webhook, path: str) -> None:
    url, recorder = webhook
    form = load_form("mms_only")  # Body= is blank and still signed
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert ET.fromstring(answer.text).findtext("Message/Body") == "got <2> & thanks"
    [(inbound, budget)] = recorder.seen
    assert inbound.channel_id == form["MessageSid"] and budget == 1.5


async def test_signature_over_the_query_string_too(webhook) -> None:
    url, recorder = webhook
    form = load_form("sms_basic")
    path = "/webhooks/twilio/sms?tenant=a"
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 200 and len(recorder.seen) == 1


@pytest.mark.parametrize("case", ["missing", "forged", "local_url", "tampered"])
async def test_unsigned_or_forged_requests_are_403_and_record_nothing(webhook, case: str) -> None:
    url, recorder = webhook
    path = "/webhooks/twilio/sms"
    form = load_form("sms_basic")
    headers = {
        "missing": {},
        "forged": {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        "local_url": signed(path, form, base=url),  # behind a proxy only the public URL counts
        "tampered": signed(path, form | {"Body": "something else"}),
    }[case]
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(path, data=form, headers=headers)
        status = await http.post(
            "/webhooks/twilio/status", data=load_form("status_delivered"), headers=headers
        )
    assert (answer.status_code, status.status_code) == (403, 403)
    assert recorder.seen == [] and recorder.reports == []
    assert form["Body"] not in answer.text


async def test_signed_but_malformed_form_is_400_without_echo(webhook) -> None:
    url, recorder = webhook
    form = load_form("malformed_from")
    path = "/webhooks/twilio/sms"
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 400 and "'From'" in answer.text
    assert "not-a-number" not in answer.text and recorder.seen == []


async def test_status_callback_is_parsed_and_reported(webhook) -> None:
    url, recorder = webhook
    path = "/webhooks/twilio/status"
    form = load_form("status_undelivered")
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(path, data=form, headers=signed(path, form))
    assert answer.status_code == 200
    assert recorder.reports == [DeliveryReport(form["MessageSid"], "undelivered", 30003)]


# ---- hostile and odd bodies through the real server, on both databases (issue 9, item 9) ----

ODD_BODIES = [  # (Body as Twilio would percent-encode it, the text stored)
    ("hi%00there", "hi\ufffdthere"),  # NUL: PostgreSQL cannot store it
    ("%FF%FEbad", "\ufffd\ufffdbad"),  # invalid UTF-8 behind percent-encoding
    ("%ED%A0%80x", "\ufffd\ufffd\ufffdx"),  # an encoded lone surrogate
    ("bell%07%1B", "bell\ufffd\ufffd"),  # control characters
    ("%F0%9F%92%96+see+you+%F0%9F%8E%A4", "💖 see you 🎤"),
    ("%ZZ+100%", "%ZZ 100%"),  # not percent-encoding at all: kept as typed
    ("", ""),  # empty, no media
    ("a" * 1600, "a" * 1600),
]


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[object]:
    from tests.app.stack import INLINE_BUDGET_S, running_stack

    # these tests read the inline answer: a reply budget no loaded turn reaches
    async for stack in running_stack(database_url, reply_budget_s=INLINE_BUDGET_S):
        yield stack


async def post_raw(stack, raw: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    """POST a form body exactly as given, signed over what it decodes to (as Twilio signs)."""
    from urllib.parse import parse_qsl

    from bot.testing.twilio_server import TEST_AUTH_TOKEN

    path = "/webhooks/twilio/sms"
    form = dict(parse_qsl(raw, keep_blank_values=True))
    sig = RequestValidator(TEST_AUTH_TOKEN).compute_signature(stack.url + path, form)
    headers = {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"}
    return await stack.http.post(path, content=raw.encode("latin-1"), headers=headers)


def raw_form(stack, sender: str, body: str) -> str:  # type: ignore[no-untyped-def]
    from urllib.parse import urlencode

    fields = stack.form(sender, "")
    del fields["Body"]
    return urlencode(fields) + "&Body=" + body


async def test_odd_bodies_are_stored_cleaned_and_answered(server) -> None:  # type: ignore[no-untyped-def]
    from tests.app.stack import fan

    for raw_body, stored in ODD_BODIES:
        number = fan()
        answer = await post_raw(server, raw_form(server, number, raw_body))
        assert answer.status_code == 200, raw_body
        assert "<Message>" in answer.text, raw_body  # answered, inline
        [row] = await server.inbound(number)
        assert row.body == stored


async def test_oversized_bodies_and_raw_bytes_are_clear_4xx_without_echo(server) -> None:  # type: ignore[no-untyped-def]
    from tests.app.stack import fan

    number = fan()
    too_long = await post_raw(server, raw_form(server, number, "x" * 10_001))
    assert too_long.status_code == 413 and "Body" in too_long.text and "xxx" not in too_long.text
    path = "/webhooks/twilio/sms"
    raw = (raw_form(server, number, "") + "caf\xe9").encode("latin-1")  # not UTF-8 at all
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    bad = await server.http.post(path, content=raw, headers=headers)
    assert bad.status_code == 400 and "UTF-8" in bad.text
    assert await server.inbound(number) == []


async def test_whatsapp_senders_are_not_taken_for_the_sms_fan(server, caplog) -> None:  # type: ignore[no-untyped-def]
    from tests.app.stack import fan

    number = fan()
    await server.text(number, "hi")  # the SMS fan
    caplog.set_level("INFO")
    form = server.form("whatsapp:" + number, "STOP")
    answer = await server.post("/webhooks/twilio/sms", form)
    assert answer.status_code == 200 and "<Message>" not in answer.text  # TwiML, empty
    assert [row.body for row in await server.inbound(number)] == ["hi"]
    assert (await server.store.contact_by_phone(number)).subscription != "unsubscribed"
    assert "whatsapp channel" in caplog.text and number[2:] not in caplog.text
