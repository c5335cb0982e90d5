"""TwilioGateway through the real SDK against the local server: results and the error mapping."""

from __future__ import annotations

import pytest

from bot.channels.simulator import SimulatorFeed
from bot.channels.twilio_gateway import LocalGateway, TwilioGateway
from bot.errors import ConfigError, PermanentSendError, RetryableSendError
from bot.outbound import OutboxItem

from .conftest import OUR_NUMBER, LocalTwilio

FAN = "+14155550123"


def item(to: str = FAN, body: str = "hello", **kw) -> OutboxItem:
    fields = {"id": 1, "message_id": 1, "contact_id": 1, "to": to, "sender": None, "body": body,
              "media_urls": (), "attempts": 0, "kind": "reply"} | kw  # fmt: skip
    return OutboxItem(**fields)


async def test_send_returns_sid_segments_and_encoding(
    gateway: TwilioGateway, twilio: LocalTwilio
) -> None:
    gsm = await gateway.send(item(body="a" * 161))
    ucs = await gateway.send(item(body="héllo 💖"))
    assert gsm.sid.startswith("SM") and gsm.status == "queued"
    assert (gsm.segments, gsm.encoding) == (2, "GSM-7")
    assert (ucs.segments, ucs.encoding) == (1, "UCS-2")
    assert [m["sid"] for m in twilio.server.accepted(FAN)] == [gsm.sid, ucs.sid]
    assert twilio.server.accepted()[0]["from"] == OUR_NUMBER


async def test_messaging_service_and_media(twilio: LocalTwilio) -> None:
    service = "MG" + "a" * 32
    gw = TwilioGateway(
        "AC" + "0" * 31 + "1",
        twilio.server.auth_token,
        messaging_service_sid=service,
        base_url=twilio.url,
    )
    try:
        result = await gw.send(item(body="", media_urls=("https://example.com/poster.jpg",)))
    finally:
        await gw.aclose()
    sent = twilio.server.accepted()[0]
    assert result.sid.startswith("MM") and result.status == "accepted"
    assert sent["messaging_service_sid"] == service and sent["num_media"] == "1"


async def test_explicit_sender_wins_over_default(
    gateway: TwilioGateway, twilio: LocalTwilio
) -> None:
    await gateway.send(item(sender="+14155550199"))
    assert twilio.server.accepted()[0]["from"] == "+14155550199"


@pytest.mark.parametrize(
    ("faults", "retry_after"),
    [
        ({"count_429": 1, "retry_after": 7}, 7.0),
        ({"count_429": 1}, None),
        ({"count_500": 1}, None),
        ({"count_drop": 1}, None),
    ],
)
async def test_transient_failures_are_retryable(
    gateway, twilio: LocalTwilio, faults, retry_after
) -> None:
    twilio.server.set_faults(**faults)
    with pytest.raises(RetryableSendError) as caught:
        await gateway.send(item())
    assert caught.value.retry_after == retry_after
    assert twilio.server.accepted() == []
    assert (await gateway.send(item())).sid  # the fault was one-off; the next send goes through


async def test_connection_refused_is_retryable() -> None:
    gw = TwilioGateway(
        "AC" + "0" * 31 + "1", "t", from_number=OUR_NUMBER, base_url="http://127.0.0.1:9", timeout=2
    )
    try:
        with pytest.raises(RetryableSendError):
            await gw.send(item())
    finally:
        await gw.aclose()


async def test_timeout_is_retryable(twilio: LocalTwilio) -> None:
    twilio.server.set_faults(latency_s=1.0)
    gw = twilio.gateway(timeout=0.05)
    try:
        with pytest.raises(RetryableSendError, match="TimeoutError"):
            await gw.send(item())
    finally:
        await gw.aclose()


@pytest.mark.parametrize("code", [21610, 21211, 21614, 21612])
async def test_permanent_errors_carry_the_code(gateway, twilio: LocalTwilio, code: int) -> None:
    twilio.server.set_faults(permanent={FAN: code})
    with pytest.raises(PermanentSendError) as caught:
        await gateway.send(item())
    assert caught.value.code == code
    assert FAN not in str(caught.value)  # no phone numbers in errors (they end up in logs)


async def test_invalid_number_is_permanent_21211(gateway) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await gateway.send(item(to="555-0100"))
    assert caught.value.code == 21211


def test_gateway_needs_a_sender() -> None:
    with pytest.raises(ConfigError, match="from number or a messaging service"):
        TwilioGateway("AC" + "0" * 32, "t")


async def test_local_gateway_publishes_to_the_feed() -> None:
    feed = SimulatorFeed()
    gw = LocalGateway(feed)
    async with feed.subscribe(FAN) as queue:
        result = await gw.send(item(body="hi fan", media_urls=("https://example.com/x.png",)))
        got = queue.get_nowait()
    assert (got.to, got.body, got.media_urls) == (FAN, "hi fan", ("https://example.com/x.png",))
    assert result.sid.startswith("MM") and result.status == "delivered"
    assert feed.subscribers(FAN) == 0
