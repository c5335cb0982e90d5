"""Receiving side of the SMS channel: step 0 of the message's path, Twilio -> InboundSms.

Verifies `X-Twilio-Signature` with the SDK's `RequestValidator` against the public URL (the
configured base URL, so it holds behind a reverse proxy), parses Twilio's form into
`InboundSms`, hands it to the pipeline and answers TwiML with whatever replies fit the budget.
Status callbacks become `DeliveryReport`s. Nothing from an unsigned or forged request is used.
A text or callback the database could not take is answered 503 ("not stored, send again"),
never 500, and the answer echoes nothing of the request. Inbound bodies are cleaned of C0/C1
control characters at `InboundSms` (`bot.messages.clean_text`), the one door texts come in by.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

import phonenumbers
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text
from twilio.request_validator import RequestValidator

from bot.errors import BadRequest, Forbidden, HttpError, StorageError
from bot.messages import DeliveryReport, InboundSms, OutboundSms

log = logging.getLogger(__name__)

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_CHANNEL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")  # whatsapp:+1..., messenger:..., rcs:...
MAX_BODY = 10_000  # characters; a carrier's longest text is 1,600
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_MAX_MEDIA = 10
_OPT_OUT_TYPES = {"STOP", "START", "HELP"}
_STATUSES = {
    "accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered",
    "failed", "read", "canceled", "partially_delivered", "receiving", "received",
}  # fmt: skip
XML = "application/xml"
NOT_STORED = "not stored, please retry"  # our own words only: nothing of the request is echoed


class TurnOutcome(Protocol):
    twiml_replies: list[OutboundSms]
    durable: bool  # False: the text is not stored yet; never acknowledged with a 200


Handle = Callable[..., Awaitable[TurnOutcome]]  # handle(inbound, *, budget: float)
Reports = Callable[[DeliveryReport], Awaitable[Any]]


class BodyTooLong(HttpError):
    status = 413


class OtherChannel(Exception):
    """A text on a channel other than SMS (WhatsApp, ...): not ours to answer as an SMS fan."""

    def __init__(self, channel: str):
        super().__init__(channel)
        self.channel = channel


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    """Twilio's inbound form -> InboundSms. BadRequest names the field, never echoes its value;
    OtherChannel for a `whatsapp:` (or other non-SMS) address, kept apart from SMS fans."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not _SID.match(sid):
        raise BadRequest("missing or malformed MessageSid")
    for key in ("From", "To"):
        if found := _CHANNEL.match(form.get(key) or ""):
            raise OtherChannel(found.group(1).lower()[:20])
    body = form.get("Body") or ""  # MMS-only texts come without one
    if len(body) > MAX_BODY:
        raise BodyTooLong(f"'Body' is longer than {MAX_BODY} characters")
    sender = _e164(form.get("From"), "From", allow_short_code=False)
    recipient = _e164(form.get("To"), "To", allow_short_code=True)
    opt_out = (form.get("OptOutType") or "").strip().upper() or None
    return InboundSms(
        channel_id=sid,
        sender=sender,
        recipient=recipient,
        body=body,  # invalid code points (NUL, ...) become U+FFFD in InboundSms
        media_urls=_media(form),
        opt_out_type=opt_out if opt_out in _OPT_OUT_TYPES else None,
    )


def _e164(raw: str | None, field: str, *, allow_short_code: bool) -> str:
    number = _normalised((raw or "").strip(), allow_short_code)
    if number is None:
        raise BadRequest(f"'{field}' is not a phone number")
    return number


@lru_cache(maxsize=16384)
def _normalised(raw: str, allow_short_code: bool) -> str | None:
    """E.164 of a number, None if it is not one. Cached: fans text again and again, our own
    number is on every text, and phonenumbers' parse was a tenth of a webhook's cost."""
    if allow_short_code and _SHORT_CODE.match(raw):
        return raw
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _media(form: Mapping[str, str]) -> tuple[str, ...]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise BadRequest("'NumMedia' is not a number") from None
    if not 0 <= count <= _MAX_MEDIA:
        raise BadRequest(f"'NumMedia' must be between 0 and {_MAX_MEDIA}")
    urls = []
    for i in range(count):
        url = form.get(f"MediaUrl{i}") or ""
        if not url.startswith(("https://", "http://")):
            raise BadRequest(f"'MediaUrl{i}' is missing or not a URL")
        urls.append(url)
    return tuple(urls)


def parse_status(form: Mapping[str, str]) -> DeliveryReport:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not _SID.match(sid):
        raise BadRequest("missing or malformed MessageSid")
    if status not in _STATUSES:
        raise BadRequest("missing or unknown MessageStatus")
    code = form.get("ErrorCode") or ""
    return DeliveryReport(sid, status, int(code) if code.isdigit() else None)


def verify_signature(
    auth_token: str, public_url: str, form: Mapping[str, Any], signature: str | None
) -> bool:
    """True when `signature` is Twilio's HMAC of `public_url` + the form (the URL Twilio called)."""
    if not signature:
        return False
    if hmac.compare_digest(_signature(auth_token, public_url, form), signature):
        return True  # the common case, at a fraction of the SDK's cost (one HMAC, no parsing)
    # else the SDK decides: it also accepts the URL with its default port added or removed
    return bool(RequestValidator(auth_token).validate(public_url, form, signature))


def _signature(auth_token: str, url: str, form: Mapping[str, Any]) -> str:
    """Twilio's HMAC-SHA1 of the URL followed by each name and value, both sorted (as the SDK's
    `compute_signature`); multi-valued forms (lists) sign each distinct value."""
    parts = [url]
    for name in sorted(form):
        values = form[name]
        for value in sorted(set(values)) if isinstance(values, list) else (values,):
            parts.append(name)
            parts.append(value)
    digest = hmac.new(auth_token.encode(), "".join(parts).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twiml(replies: Sequence[OutboundSms]) -> str:
    """A <Response> with one <Message> per reply: the twilio SDK's TwiML, byte for byte
    (tests compare them), written directly (the SDK's element tree was a fifth of a webhook)."""
    if not replies:
        return _DECLARATION + "<Response />"
    out = [_DECLARATION, "<Response>"]
    for reply in replies:
        parts = [f"<Body>{_xml_text(reply.body)}</Body>"] if reply.body else []
        parts += [f"<Media>{_xml_text(url)}</Media>" for url in reply.media_urls]
        out.append(f"<Message>{''.join(parts)}</Message>" if parts else "<Message />")
    out.append("</Response>")
    return "".join(out)


_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _xml_text(value: str) -> str:
    """Element text escaped as ElementTree escapes it (quotes need no escaping in text)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def public_url(base_url: str, request: Request) -> str:
    url = base_url.rstrip("/") + request.path
    return f"{url}?{request.query_string}" if request.query_string else url


def webhook_blueprint(
    handle: Handle,
    reports: Reports,
    *,
    auth_token: str,
    public_base_url: str,
    reply_budget_s: float = 2.0,
    name: str = "twilio_webhook",
) -> Blueprint:
    bp = Blueprint(name)

    def signed_form(request: Request) -> dict[str, str]:
        # Blank values count: Twilio signs "Body=" of an MMS-only text. Multi-valued, like Twilio.
        try:  # Twilio percent-encodes UTF-8; raw other bytes are not its form
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the form is not valid UTF-8") from None
        form = request.get_form(keep_blank_values=True) or {}
        signature = request.headers.get("X-Twilio-Signature")
        if not verify_signature(auth_token, public_url(public_base_url, request), form, signature):
            log.warning("twilio webhook: missing or invalid signature on %s", request.path)
            raise Forbidden("invalid signature")
        return {key: values[0] for key, values in form.items()}

    async def inbound(request: Request) -> HTTPResponse:
        try:
            message = parse_inbound(signed_form(request))
        except HttpError as exc:
            return _error(exc)
        except OtherChannel as exc:  # answered (Twilio must not retry), never as an SMS fan
            log.info("twilio webhook: ignored a text on the %s channel (SMS only)", exc.channel)
            return text(twiml([]), content_type=XML)
        try:
            outcome = await handle(message, budget=reply_budget_s)
        except StorageError as exc:  # not stored: 503 asks Twilio to deliver it again
            log.warning("twilio webhook: text not stored (%s); answered 503", _kind(exc))
            return text(NOT_STORED, status=503)
        if not outcome.durable:  # Twilio delivers it again; a 200 would lose it for good
            return text(NOT_STORED, status=503)
        return text(twiml(outcome.twiml_replies), content_type=XML)

    async def status(request: Request) -> HTTPResponse:
        try:
            report = parse_status(signed_form(request))
        except HttpError as exc:
            return _error(exc)
        try:
            await reports(report)  # unknown SIDs are fine: Twilio only needs a 2xx
        except Exception as exc:  # the top of a request: the database away, or shutting down
            log.warning("twilio webhook: status callback not stored (%s)", _kind(exc))
            return text(NOT_STORED, status=503)
        return text("", status=200)

    bp.add_route(inbound, "/webhooks/twilio/sms", methods=["POST"], name="sms")
    bp.add_route(inbound, "/webhooks/twilio/webhook", methods=["POST"], name="webhook")
    bp.add_route(status, "/webhooks/twilio/status", methods=["POST"], name="status")
    return bp


def _kind(exc: Exception) -> str:
    """What a log line may say about a storage error: its kind, never its parameters."""
    return type(exc).__name__


def _error(exc: HttpError) -> HTTPResponse:
    return text(str(exc), status=exc.status)
