"""Sender -> local Twilio -> signed status callbacks -> our webhook -> the store's delivery state."""

from __future__ import annotations

import pytest
from sanic import Sanic

from bot.channels.twilio_webhook import webhook_blueprint
from bot.outbound import OutboundSender
from bot.testing import bind_local, serve_in_process, url_of
from bot.testing.twilio_server import TEST_AUTH_TOKEN

from .conftest import LocalTwilio
from .memory_store import MemoryOutboxStore

FAN, LOST = "+14155550123", "+14155550124"


async def no_turns(inbound, *, budget):  # pragma: no cover - status callbacks only
    raise AssertionError("no inbound texts in this test")


@pytest.mark.parametrize("public_base", [None, "https://fans.example.com"])
async def test_status_callbacks_are_signed_and_update_delivery(
    twilio: LocalTwilio, public_base
) -> None:
    store = MemoryOutboxStore()
    sock = bind_local()
    url = url_of(sock)
    app = Sanic(f"status_test_{public_base is None}")
    # Twilio calls the URL it was given and signs that; a different public base must not verify.
    base = public_base or url
    app.blueprint(
        webhook_blueprint(
            no_turns, store.apply_delivery_report, auth_token=TEST_AUTH_TOKEN, public_base_url=base
        )
    )
    async with serve_in_process(app, sock):
        gw = twilio.gateway(status_callback_url=f"{url}/webhooks/twilio/status")
        ok, lost = store.add(FAN, "will arrive"), store.add(LOST, "will not")
        twilio.server.set_faults(outcomes={LOST: ["undelivered", 30003]})
        try:
            await OutboundSender(store, gw, rate_per_second=100).drain()
            await twilio.server.flush_callbacks()
        finally:
            await gw.aclose()

    answers = {status for _, _, status in twilio.server.callbacks}
    if public_base is None:
        assert answers == {200}
        assert ok.delivery == ["queued", "sent", "delivered"] and ok.code is None
        assert lost.delivery == ["queued", "sent", "undelivered"] and lost.code == 30003
    else:
        assert answers == {403}  # signed for the URL Twilio called, not our public one
        assert ok.delivery == [] and lost.delivery == []
    assert len(twilio.server.callbacks) == 6
