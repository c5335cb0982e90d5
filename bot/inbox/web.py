"""What the inbox's HTTP edges share: their dependencies, the session of a request, CSRF checks.

Used by `api.py` (JSON) and `views.py` (HTML); both apply the same authentication and
authorisation rules through `authorise`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sanic.request import Request
from sanic.response import HTTPResponse

from bot.audience.broadcasts import BroadcastService
from bot.errors import Forbidden, NotFound, Unauthorized
from bot.inbox.auth import COOKIE, CSRF_HEADER, Auth, Session, check_csrf, require_admin
from bot.inbox.config import InboxConfig
from bot.inbox.live import LiveHub
from bot.storage import Database
from bot.storage import inbox_store as inbox_sql

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Inbox:
    """The inbox's dependencies, built once in `inbox_blueprints`."""

    db: Database
    auth: Auth
    hub: LiveHub
    config: InboxConfig
    notify_outbox: Callable[[], None]
    secure_cookies: bool
    broadcasts: Callable[[], BroadcastService]  # built once the database exists
    # the running fan line's parts, looked up per request (None where no runtime runs, e.g. a
    # bare inbox in tests): the loaded content (intents), the topic sweep, the teacher
    runtime: Callable[[], Any] = lambda: None
    sweep: Callable[[], Any] = lambda: None
    teacher: Callable[[], Any] = lambda: None

    def set_session_cookie(self, response: HTTPResponse, value: str) -> None:
        response.add_cookie(
            COOKIE, value, path="/", httponly=True, samesite="Lax",
            secure=self.secure_cookies, max_age=int(self.auth.session_ttl.total_seconds()),
        )  # fmt: skip

    def clear_session_cookie(self, response: HTTPResponse) -> None:
        response.delete_cookie(COOKIE, path="/")


async def authorise(
    request: Request, inbox: Inbox, *, admin: bool = False, csrf: str | None = None
) -> Session:
    """The request's session: 401 without one; 403 without the CSRF token on a write, or for an
    agent asking for an admin's action. `csrf` is the form field's value for HTML forms."""
    session = await inbox.auth.session(request.cookies.get(COOKIE))
    if session is None:
        raise Unauthorized("log in first")
    if request.method not in SAFE_METHODS:
        check_csrf(session, csrf if csrf is not None else request.headers.get(CSRF_HEADER))
    if admin:
        require_admin(session)
    return session


async def require_readable(inbox: Inbox, session: Session, conversation_id: int) -> None:
    """Agents read the threads that reached the inbox; admins read any (docs/inbox.md, roles).
    A thread an agent may not read looks like one that does not exist."""
    if session.agent.is_admin:
        return
    if not await inbox.db.run(inbox_sql.reached_the_inbox, conversation_id):
        raise NotFound("no such conversation")


def check_same_origin(request: Request) -> None:
    """403 for a request another site's page made (login CSRF): the browser says so in
    `Sec-Fetch-Site`, or in an `Origin` that is not this host. Tools that send neither pass."""
    site = request.headers.get("sec-fetch-site", "").lower()
    if site and site not in ("same-origin", "none"):
        raise Forbidden("cross-site request refused")
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc.lower() != (request.host or "").lower():
        raise Forbidden("cross-site request refused")


def client_ip(request: Request) -> str:
    # remote_addr honours Sanic's proxy settings (FORWARDED_SECRET / PROXIES_COUNT); else the peer
    return request.remote_addr or request.ip or "unknown"


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object. Only `application/json`: a cross-site page can send
    `text/plain` or a form without a CORS preflight, never JSON."""
    from bot.errors import BadRequest, UnsupportedMediaType

    if request.body and request.content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        data = request.json if request.body else {}
    except Exception as exc:  # sanic raises its own BadRequest on broken JSON
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object")
    return data
