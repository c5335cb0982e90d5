"""The SMS channel: Twilio webhook in, Twilio (or the local simulator) out."""

from bot.channels.simulator import SimulatorFeed, simulator_blueprint
from bot.channels.twilio_gateway import LocalGateway, TwilioGateway
from bot.channels.twilio_webhook import (
    parse_inbound,
    parse_status,
    twiml,
    verify_signature,
    webhook_blueprint,
)

__all__ = [
    "LocalGateway",
    "SimulatorFeed",
    "TwilioGateway",
    "parse_inbound",
    "parse_status",
    "simulator_blueprint",
    "twiml",
    "verify_signature",
    "webhook_blueprint",
]
