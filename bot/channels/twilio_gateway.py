"""Sending side of the SMS channel: the outbox sender hands each row to a gateway (step 10).

`TwilioGateway` is the only place that imports the twilio REST client; it maps provider errors
once to `RetryableSendError` / `PermanentSendError`. `LocalGateway` "sends" to the simulator's
live feed when no credentials are configured. Both return `bot.outbound.SendResult`.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.channels.simulator import SimulatorFeed
from bot.errors import ConfigError, PermanentSendError, RetryableSendError
from bot.outbound import OutboxItem, SendResult
from bot.sms import count_segments

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
# Crash recovery looks at messages created since the claim, less this for clock skew and
# Twilio's whole-second dates; older matches are harmless: the store knows their SIDs.
LOOKUP_SKEW = timedelta(minutes=5)
LOOKUP_LIMIT = 200  # messages to one fan since a claim; more than this and the row stays in doubt
# The last response's Retry-After, per send task (each send runs in its own context).
_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


class _Transport(AsyncTwilioHttpClient):
    """The SDK's aiohttp transport, optionally aimed at another base URL (the local server).

    Everything above the transport is the real SDK. It also keeps Retry-After, which the SDK's
    exception drops, and gives aiohttp a proper ClientTimeout.
    """

    def __init__(self, base_url: str | None, timeout: float, connections: int) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        connector = aiohttp.TCPConnector(limit=connections)
        self.session = aiohttp.ClientSession(connector=connector)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._auth: tuple[tuple[str, str], str] | None = None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url and url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = self._basic(auth)
        body: bytes | None = None
        if data:
            # encoded here: aiohttp's FormData machinery costs more than the request itself
            body = urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(
            method.upper(),
            url,
            params=params,
            data=body,
            headers=headers,
            timeout=self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
            _retry_after.set(_parse_retry_after(answer.headers.get("Retry-After")))
            return Response(answer.status, text, answer.headers)

    def _basic(self, auth: tuple[str, str]) -> str:
        if self._auth is None or self._auth[0] != auth:
            self._auth = (auth, aiohttp.encode_basic_auth(auth[0], auth[1]))
        return self._auth[1]


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from Twilio, and our own backoff covers it


class TwilioGateway:
    """Sends through Twilio's Messages API with the official SDK's async client."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        connections: int = 100,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ConfigError("Twilio needs a from number or a messaging service SID")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_url = status_callback_url
        self.base_url = base_url
        self.timeout = timeout
        self.connections = connections
        self._client: Client | None = None

    def _sdk(self) -> Client:
        # Built lazily: aiohttp wants a running event loop for its session.
        if self._client is None:
            transport = _Transport(self.base_url, self.timeout, self.connections)
            self._client = Client(self.account_sid, self.auth_token, http_client=transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.http_client.close()  # type: ignore[union-attr]
            self._client = None

    async def send(self, item: OutboxItem) -> SendResult:
        params = self._params(item)
        try:
            message = await self._sdk().messages.create_async(**params)
        except TwilioRestException as exc:
            raise map_rest_error(exc, _retry_after.get()) from None
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise RetryableSendError(f"network: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryableSendError(f"network: {type(exc).__name__}", in_doubt=True) from None
        except TwilioException as exc:
            raise RetryableSendError(f"twilio: {type(exc).__name__}") from None
        return self._result(message, item)

    async def lookup(self, item: OutboxItem) -> list[SendResult]:
        """Messages Twilio holds for this row since its claim (To/From, body), oldest first.

        Not filtered by DateSent: a message Twilio accepted but has not sent yet has none, and
        missing it would send the text twice. The list comes newest first (by DateSent), so the
        scan stops at the first message sent before the claim.
        """
        since = (item.claimed_at or datetime(1970, 1, 1, tzinfo=UTC)) - LOOKUP_SKEW
        filters: dict[str, Any] = {"to": item.to}
        if item.sender or self.from_number:
            filters["from_"] = item.sender or self.from_number
        hits: list[SendResult] = []
        seen = 0
        try:
            stream = await self._sdk().messages.stream_async(**filters, page_size=50)
            async for m in stream:
                seen += 1
                if (m.date_sent is not None and m.date_sent < since) or seen > LOOKUP_LIMIT:
                    break
                if (m.date_created is None or m.date_created >= since) and _same(m, item):
                    hits.append(self._result(m, item))
        except TwilioRestException as exc:
            raise RetryableSendError(f"lookup: twilio {exc.status}", code=exc.code) from None
        except (TimeoutError, aiohttp.ClientError, TwilioException) as exc:
            raise RetryableSendError(f"lookup: {type(exc).__name__}") from None
        if seen > LOOKUP_LIMIT:
            raise RetryableSendError(f"lookup: more than {LOOKUP_LIMIT} messages to look through")
        hits.reverse()
        return hits

    @staticmethod
    def _result(message: Any, item: OutboxItem) -> SendResult:
        segments = count_segments(item.body)
        count = int(message.num_segments) if message.num_segments else segments.count
        return SendResult(message.sid or "", str(message.status), count, segments.encoding)

    def _params(self, item: OutboxItem) -> dict[str, Any]:
        params: dict[str, Any] = {"to": item.to}
        sender = item.sender or self.from_number
        if sender:
            params["from_"] = sender
        if self.messaging_service_sid and not item.sender:
            params["messaging_service_sid"] = self.messaging_service_sid
        if item.body:
            params["body"] = item.body
        if item.media_urls:
            params["media_url"] = list(item.media_urls)
        if self.status_callback_url:
            params["status_callback"] = self.status_callback_url
        return params


PERMANENT_CODES = {
    21610: "recipient has opted out at the carrier",
    21211: "invalid 'To' number",
    21614: "'To' is not a mobile number",
    21612: "'To' is not reachable via SMS",
}


def _same(message: Any, item: OutboxItem) -> bool:
    """Twilio's copy of our row: same body (a trial account prefixes one) and media count."""
    body = message.body or ""
    if item.body and not body.endswith(item.body):
        return False
    return int(message.num_media or 0) == len(item.media_urls)


def map_rest_error(exc: TwilioRestException, retry_after: float | None = None) -> Exception:
    """The one mapping of Twilio HTTP errors: 429 and 5xx retry, other 4xx never will."""
    status, code = exc.status, exc.code if isinstance(exc.code, int) else None
    if status == 429 or status >= 500:
        return RetryableSendError(f"twilio {status}", code=code, retry_after=retry_after)
    reason = PERMANENT_CODES.get(code or 0, f"twilio {status}")
    return PermanentSendError(f"{reason} (code {code})", code=code)


class LocalGateway:
    """Local mode: delivers to the simulator's live feed instead of a carrier."""

    timeout = 1.0

    def __init__(self, feed: SimulatorFeed) -> None:
        self.feed = feed

    async def lookup(self, item: OutboxItem) -> list[SendResult]:
        return []  # the feed lived in the process that died: nothing of it reached anybody

    async def send(self, item: OutboxItem) -> SendResult:
        self.feed.publish(item.to, item.body, item.media_urls)
        segments = count_segments(item.body)
        prefix = "MM" if item.media_urls else "SM"
        return SendResult(prefix + uuid.uuid4().hex, "delivered", segments.count, segments.encoding)

    async def aclose(self) -> None:
        return None
