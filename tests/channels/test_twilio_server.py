"""The local Twilio-compatible server, driven by the real twilio SDK and by raw HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

from .conftest import OUR_NUMBER, LocalTwilio

FAN = "+14155550123"
AUTH = (TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)


async def test_sdk_create_fetch_list_round_trip(twilio: LocalTwilio, gateway) -> None:
    client = gateway._sdk()
    created = await client.messages.create_async(to=FAN, from_=OUR_NUMBER, body="hello there")
    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert created.status == "queued"
    assert created.account_sid == TEST_ACCOUNT_SID
    assert created.num_segments == "1"
    assert created.date_created is not None  # the SDK parsed the RFC 2822 date
    assert created.uri == f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages/{created.sid}.json"

    fetched = await client.messages(created.sid).fetch_async()
    assert (fetched.sid, fetched.body, fetched.to, fetched.from_) == (
        created.sid,
        "hello there",
        FAN,
        OUR_NUMBER,
    )
    assert fetched.status == "delivered"  # no callback asked for: it moved on at once

    listed = await client.messages.list_async(to=FAN)
    assert [m.sid for m in listed] == [created.sid]


async def test_list_pages_and_filters(twilio: LocalTwilio, gateway) -> None:
    client = gateway._sdk()
    sids = [
        (await client.messages.create_async(to=FAN, from_=OUR_NUMBER, body=f"n{i}")).sid
        for i in range(5)
    ]
    await client.messages.create_async(to="+14155550999", from_=OUR_NUMBER, body="other")

    # page_size 2 forces the SDK to follow next_page_uri through three pages, newest first.
    listed = await client.messages.list_async(to=FAN, page_size=2)
    assert [m.sid for m in listed] == list(reversed(sids))

    today = datetime.now(UTC)
    assert len(await client.messages.list_async(date_sent=today)) == 6
    assert len(await client.messages.list_async(date_sent_after=today - timedelta(days=1))) == 6
    assert await client.messages.list_async(date_sent_before=today - timedelta(days=1)) == []
    assert len(await client.messages.list_async(from_=OUR_NUMBER, to="+14155550999")) == 1


async def test_fetch_unknown_sid_is_404(gateway) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await gateway._sdk().messages("SM" + "f" * 32).fetch_async()
    assert (caught.value.status, caught.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": OUR_NUMBER, "Body": "x"}, 21604),
        ({"To": FAN, "Body": "x"}, 21603),
        ({"To": FAN, "From": OUR_NUMBER}, 21602),
        ({"To": "555-0100", "From": OUR_NUMBER, "Body": "x"}, 21211),
        ({"To": FAN, "From": FAN, "Body": "x"}, 21266),
        ({"To": FAN, "From": OUR_NUMBER, "Body": "x" * 1601}, 21617),
        ({"To": FAN, "From": OUR_NUMBER, "Body": "x", "StatusCallback": "ftp://x"}, 21609),
    ],
)
async def test_validation_errors_answer_like_twilio(twilio: LocalTwilio, form, code) -> None:
    async with httpx.AsyncClient(base_url=twilio.url, auth=AUTH) as http:
        answer = await http.post(
            f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json", data=form
        )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == code and body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]
    assert twilio.server.accepted() == []


async def test_wrong_credentials_are_401(twilio: LocalTwilio) -> None:
    async with httpx.AsyncClient(base_url=twilio.url, auth=(TEST_ACCOUNT_SID, "wrong")) as http:
        answer = await http.post(
            f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json",
            data={"To": FAN, "From": OUR_NUMBER, "Body": "x"},
        )
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert twilio.server.accepted() == []


async def test_media_messages_get_mm_sids(gateway, twilio: LocalTwilio) -> None:
    created = await gateway._sdk().messages.create_async(
        to=FAN,
        from_=OUR_NUMBER,
        media_url=["https://example.com/a.jpg", "https://example.com/b.png"],
    )
    assert created.sid.startswith("MM") and created.num_media == "2"


async def test_admin_endpoint_sets_faults_and_lists_messages(twilio: LocalTwilio, gateway) -> None:
    async with httpx.AsyncClient(base_url=twilio.url) as http:
        answer = await http.post("/_admin/faults", json={"count_500": 1, "permanent": {FAN: 21610}})
        assert answer.status_code == 200
        assert (await http.post("/_admin/faults", json={"nonsense": 1})).status_code == 400
    # the rejected update must not have replaced the accepted one
    assert twilio.server.faults.count_500 == 1
    client = gateway._sdk()
    with pytest.raises(TwilioRestException) as first:
        await client.messages.create_async(to=FAN, from_=OUR_NUMBER, body="x")
    with pytest.raises(TwilioRestException) as second:
        await client.messages.create_async(to=FAN, from_=OUR_NUMBER, body="x")
    assert (first.value.status, second.value.code) == (500, 21610)
    ok = await client.messages.create_async(to="+14155550124", from_=OUR_NUMBER, body="fine")
    async with httpx.AsyncClient(base_url=twilio.url) as http:
        listed = (await http.get("/_admin/messages")).json()
    assert [m["sid"] for m in listed["messages"]] == [ok.sid]
    assert listed["requests"] == 3
