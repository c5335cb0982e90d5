"""A Twilio-compatible Messages API on 127.0.0.1, for tests and benchmarks (not on the message path).

It answers the paths the real twilio SDK calls (create, fetch, list) as described by Twilio's
OpenAPI file (`../shared/twilio/twilio_api_v2010.yaml`), validates like Twilio (400 + JSON error
codes), posts status callbacks signed with the SDK's `RequestValidator`, injects faults on demand
(latency, 429, 500, dropped connections, lost answers, failing lookups, per-number permanent
errors), can hold incoming sends until released (to line up races deterministically) and
records every accepted message so tests can assert exactly-once delivery.

    python -m bot.testing.twilio_server --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json
from twilio.request_validator import RequestValidator

from bot.sms import count_segments

TEST_ACCOUNT_SID = "AC" + "0" * 31 + "1"
TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
API = "/2010-04-01/Accounts/<account_sid>"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MEDIA_LIMIT = 10
_ids = itertools.count(1)

# Twilio error codes the server can answer with: code -> (HTTP status, Twilio's message).
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "Invalid 'To' Phone Number"),
    21212: (400, "Invalid 'From' Phone Number"),
    21266: (400, "'To' and 'From' number cannot be the same"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination.",
    ),
    21609: (400, "Invalid StatusCallback url"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21623: (400, "Number of media files exceeds allowed limit"),
}


@dataclass
class Faults:
    """What goes wrong, settable at run time. Rates are shares of requests; counts are exact."""

    latency_s: float = 0.0
    rate_429: float = 0.0
    count_429: int = 0
    rate_500: float = 0.0
    count_500: int = 0
    rate_drop: float = 0.0
    count_drop: int = 0
    # accepted and recorded, then the connection drops before the answer: the client can't know
    rate_lost_answer: float = 0.0
    count_lost_answer: int = 0
    # the lookups (list / fetch) alone answer 500: a lost answer whose lookup fails too
    rate_lookup_500: float = 0.0
    count_lookup_500: int = 0
    retry_after: float | None = None  # Retry-After header on 429s
    # a send held at the gate (`hold()`) is accepted on `release()` even if its client gave up
    # meanwhile, as Twilio keeps a request it has received: a late accept after a timeout
    accept_abandoned: bool = False
    permanent: dict[str, int] = field(default_factory=dict)  # To -> code at create
    outcomes: dict[str, list[Any]] = field(default_factory=dict)  # To -> [final status, ErrorCode]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**data)


def twilio_error(code: int, headers: dict[str, str] | None = None) -> HTTPResponse:
    status, message = ERRORS[code]
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return json(body, status=status, headers=headers)


def rfc2822(at: datetime | None) -> str | None:
    return format_datetime(at, usegmt=False).replace("-0000", "+0000") if at else None


class _Drop(Exception):
    """Raised after aborting the transport: the client sees a dropped connection."""


class TwilioServer:
    """The server's state and its Sanic app; serve with `bot.testing.serve_in_process(server.app)`."""

    def __init__(
        self,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        *,
        seed: int = 0,
        callback_delay_s: float = 0.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.faults = Faults()
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> resource, in creation order
        self.requests = 0
        self.callbacks: list[tuple[str, dict[str, str], int]] = []  # (url, params, our status)
        self._callback_delay_s = callback_delay_s
        self._random = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._validator = RequestValidator(auth_token)
        self._arrived = asyncio.Condition()
        self._callbacks_open = asyncio.Event()  # cleared by hold_callbacks()
        self._callbacks_open.set()
        self._open = asyncio.Event()
        self._open.set()
        self.held = 0  # sends waiting at the gate right now
        self._late: set[asyncio.Future[HTTPResponse]] = set()  # held sends whose client left
        self.app = self._build_app()

    # -- in-process API ---------------------------------------------------------------------
    def set_faults(self, **settings: Any) -> None:
        self.faults = Faults(**settings)

    def reset(self) -> None:
        self.faults = Faults()
        self._open.set()
        self.messages.clear()
        self.callbacks.clear()
        self.requests = 0

    def hold(self) -> None:
        """Sends that arrive from now on wait (before they are accepted) until `release()`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def wait_held(self, count: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until `count` sends are waiting at the gate."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: self.held >= count)

    def accepted(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if to is None or m["to"] == to]

    async def wait_accepted(
        self, count: int, *, to: str | None = None, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait (bounded) until at least `count` messages were accepted; synchronisation for tests."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.accepted(to)) >= count)
        return self.accepted(to)

    def hold_callbacks(self) -> None:
        """Post no status callback until `release_callbacks()`: real Twilio answers the create
        before its callbacks come, which a loaded test machine cannot promise on its own."""
        self._callbacks_open.clear()

    def release_callbacks(self) -> None:
        self._callbacks_open.set()

    async def flush_callbacks(self) -> None:
        """Wait until every scheduled status callback has been posted."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def aclose(self) -> None:
        await self.flush_callbacks()
        if self._http is not None:
            await self._http.aclose()

    # -- HTTP ------------------------------------------------------------------------------
    def _build_app(self) -> Sanic:
        app = Sanic(f"twilio_local_{next(_ids)}")
        app.config.KEEP_ALIVE_TIMEOUT = 30
        app.add_route(self._create, f"{API}/Messages.json", methods=["POST"])
        app.add_route(self._list, f"{API}/Messages.json", methods=["GET"])
        app.add_route(self._fetch, f"{API}/Messages/<resource>", methods=["GET"])
        app.add_route(self._admin_faults, "/_admin/faults", methods=["POST"])
        app.add_route(self._admin_reset, "/_admin/reset", methods=["POST"])
        app.add_route(self._admin_messages, "/_admin/messages", methods=["GET"])
        app.exception(_Drop)(self._on_drop)
        app.after_server_stop(self._on_stop)
        return app

    async def _on_stop(self, app: Sanic) -> None:
        await self.aclose()

    async def _on_drop(self, request: Request, exc: Exception) -> HTTPResponse:
        return HTTPResponse(status=500)  # never reaches the client: the socket is gone

    async def _gate(self, request: Request, account_sid: str) -> HTTPResponse | None:
        """Faults first (they model the network and Twilio's edge), then authentication."""
        self.requests += 1
        f = self.faults
        if f.latency_s:
            await asyncio.sleep(f.latency_s)
        if self._trip("drop"):
            request.transport.abort()
            raise _Drop()
        if self._trip("429"):
            headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else None
            return twilio_error(20429, headers)
        if self._trip("500"):
            return twilio_error(20500)
        auth = request.credentials
        if (
            auth is None
            or account_sid != self.account_sid
            or auth.username != self.account_sid
            or auth.password != self.auth_token
        ):
            return twilio_error(20003)
        return None

    def _trip(self, kind: str) -> bool:
        count = getattr(self.faults, f"count_{kind}")
        if count > 0:
            setattr(self.faults, f"count_{kind}", count - 1)
            return True
        rate = getattr(self.faults, f"rate_{kind}")
        return rate > 0 and self._random.random() < rate

    async def _create(self, request: Request, account_sid: str) -> HTTPResponse:
        if not self._open.is_set():
            if self.faults.accept_abandoned:  # the client's disconnect cancels only its answer
                late = asyncio.ensure_future(self._accept_later(request, account_sid))
                self._late.add(late)
                late.add_done_callback(self._late.discard)
                return await asyncio.shield(late)
            await self._wait_at_gate()
        return await self._accept(request, account_sid)

    async def _accept_later(self, request: Request, account_sid: str) -> HTTPResponse:
        await self._wait_at_gate()
        return await self._accept(request, account_sid)

    async def _accept(self, request: Request, account_sid: str) -> HTTPResponse:
        refused = await self._gate(request, account_sid)
        if refused is not None:
            return refused
        form = {k: v for k, v in request.form.items()}
        code = self._invalid(form)
        if code is not None:
            return twilio_error(code)
        message = self._new_message(form)
        self.messages[message["sid"]] = message
        async with self._arrived:
            self._arrived.notify_all()
        if self._trip("lost_answer"):
            request.transport.abort()
            raise _Drop()
        answer = json(message, status=201)
        self._advance(message, form.get("StatusCallback", [None])[0])
        return answer

    async def _wait_at_gate(self) -> None:
        self.held += 1
        async with self._arrived:
            self._arrived.notify_all()
        try:
            await self._open.wait()
        finally:
            self.held -= 1

    def _invalid(self, form: dict[str, list[str]]) -> int | None:
        to, sender = _first(form, "To"), _first(form, "From")
        service, body = _first(form, "MessagingServiceSid"), _first(form, "Body")
        media, callback = form.get("MediaUrl", []), _first(form, "StatusCallback")
        checks = [
            (not to, 21604),
            (not sender and not service, 21603),
            (not body and not media, 21602),
            (to is not None and not _E164.match(to), 21211),
            (sender is not None and not _E164.match(sender), 21212),
            (to is not None and to == sender, 21266),
            (body is not None and len(body) > 1600, 21617),
            (len(media) > _MEDIA_LIMIT, 21623),
            (callback is not None and not callback.startswith(("http://", "https://")), 21609),
        ]
        for failed, code in checks:
            if failed:
                return code
        return self.faults.permanent.get(to or "")

    def _new_message(self, form: dict[str, list[str]]) -> dict[str, Any]:
        body = _first(form, "Body") or ""
        media = form.get("MediaUrl", [])
        sid = ("MM" if media else "SM") + uuid.uuid4().hex
        now = rfc2822(datetime.now(UTC))
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        service = _first(form, "MessagingServiceSid")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": _first(form, "From") or "+15005550006",
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": str(count_segments(body).count),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not _first(form, "From") else "queued",
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": _first(form, "To"),
            "uri": f"{base}.json",
            "_at": time.time(),  # when it was accepted: benchmarks count sends per second
        }

    def _advance(self, message: dict[str, Any], callback: str | None) -> None:
        """Move the message through its life; post callbacks when asked (in a tracked task)."""
        final, error = self.faults.outcomes.get(message["to"], ["delivered", None])
        if callback is None:
            self._set_status(message, "sent")
            self._set_status(message, final, error)
            return
        task = asyncio.get_running_loop().create_task(
            self._callbacks(message, callback, final, error)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_status(self, message: dict[str, Any], status: str, error: int | None = None) -> None:
        now = datetime.now(UTC)
        message["status"] = status
        message["date_updated"] = rfc2822(now)
        if status == "sent":
            message["date_sent"] = rfc2822(now)
            message["_sent_on"] = now.date().isoformat()
        message["error_code"] = error

    async def _callbacks(
        self, message: dict[str, Any], url: str, final: str, error: int | None
    ) -> None:
        await self._callbacks_open.wait()
        for status in ("queued", "sent", final):
            if self._callback_delay_s:
                await asyncio.sleep(self._callback_delay_s)
            self._set_status(message, status, error if status == final else None)
            await self._post_callback(message, url, status)

    async def _post_callback(self, message: dict[str, Any], url: str, status: str) -> None:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"],
            "MessageSid": message["sid"],
            "MessageStatus": status,
            "SmsSid": message["sid"],
            "SmsStatus": status,
            "To": message["to"],
        }
        if message["error_code"] is not None:
            params["ErrorCode"] = str(message["error_code"])
        signature = self._validator.compute_signature(url, params)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        try:
            answer = await self._http.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            )
            self.callbacks.append((url, params, answer.status_code))
        except httpx.HTTPError:
            self.callbacks.append((url, params, 0))  # Twilio does not retry callbacks either

    async def _fetch(self, request: Request, account_sid: str, resource: str) -> HTTPResponse:
        refused = await self._gate(request, account_sid)
        if refused is not None:
            return refused
        if self._trip("lookup_500"):
            return twilio_error(20500)
        sid = resource.removesuffix(".json")
        message = self.messages.get(sid) if resource.endswith(".json") else None
        if message is None:
            return twilio_error(20404)
        return json(_public(message))

    async def _list(self, request: Request, account_sid: str) -> HTTPResponse:
        refused = await self._gate(request, account_sid)
        if refused is not None:
            return refused
        if self._trip("lookup_500"):
            return twilio_error(20500)
        args = {k: v[0] for k, v in request.args.items()}
        try:
            size = min(max(int(args.get("PageSize", 50)), 1), 1000)
            page = max(int(args.get("Page", 0)), 0)
        except ValueError:
            return json({"code": 20001, "message": "Invalid paging parameter", "status": 400}, 400)
        hits = [m for m in reversed(self.messages.values()) if _matches(m, args)]
        chunk = hits[page * size : (page + 1) * size]
        return json(self._page(args, hits, chunk, page, size))

    def _page(
        self, args: dict[str, str], hits: list[Any], chunk: list[Any], page: int, size: int
    ) -> dict[str, Any]:
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v for k, v in args.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            token = {"PageToken": f"PA{chunk[-1]['sid']}"} if n > page and chunk else {}
            return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': n, **token})}"

        more = (page + 1) * size < len(hits)
        return {
            "end": page * size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "messages": [_public(m) for m in chunk],
            "start": page * size,
            "uri": uri(page),
        }

    # -- admin -----------------------------------------------------------------------------
    async def _admin_faults(self, request: Request) -> HTTPResponse:
        try:
            self.faults = Faults.from_json(request.json or {})
        except (TypeError, ValueError) as exc:
            return json({"error": str(exc)}, status=400)
        return json(asdict(self.faults))

    async def _admin_reset(self, request: Request) -> HTTPResponse:
        self.reset()
        return json({"ok": True})

    async def _admin_messages(self, request: Request) -> HTTPResponse:
        return json(
            {"requests": self.requests, "messages": [_public(m) for m in self.messages.values()]}
        )


def _first(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _matches(message: dict[str, Any], args: dict[str, str]) -> bool:
    """To / From / DateSent (YYYY-MM-DD, DateSent< and DateSent> inclusive, as Twilio's docs say)."""
    if "To" in args and message["to"] != args["To"]:
        return False
    if "From" in args and message["from"] != args["From"]:
        return False
    sent_on = message.get("_sent_on")
    for key, ok in (
        ("DateSent", lambda d: sent_on == d),
        ("DateSent<", lambda d: sent_on is not None and sent_on <= d),
        ("DateSent>", lambda d: sent_on is not None and sent_on >= d),
    ):
        if key in args and not ok(args[key][:10]):
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=TEST_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=TEST_AUTH_TOKEN)
    args = parser.parse_args(argv)
    server = TwilioServer(args.account_sid, args.auth_token)
    server.app.run(
        host=args.host, port=args.port, single_process=True, access_log=False, motd=False
    )


if __name__ == "__main__":
    main()
