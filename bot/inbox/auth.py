"""Who may answer fans: agent accounts, argon2 passwords, signed session cookies, CSRF, rate limits.

Off the message's path: every inbox page and API call passes through `Auth.session` first.
A session is a random token in an itsdangerous-signed, HTTP-only cookie; the database keeps
only its sha256, the agent and a CSRF token, so logging out or disabling an agent ends it at
once. Failed logins are counted per username and per client address; each attempt is counted
(as a failure until proven right) in the same transaction that checks the limit, before the
password is hashed, so parallel guesses cannot all slip under it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from bot.storage import Database
from bot.storage import inbox_store as sql
from bot.storage.db import Connection

ROLES = ("admin", "agent")
COOKIE = "fanline_session"
CSRF_HEADER = "X-CSRF-Token"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


class TooManyAttempts(TooManyRequests):
    """429: too many failed logins; `retry_after` seconds until the next try is allowed."""

    def __init__(self, retry_after: int):
        super().__init__("too many failed logins; try again later", retry_after)


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    username: str
    display_name: str
    role: str  # admin | agent
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "role": self.role, "active": self.active}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Session:
    agent: Agent
    csrf: str
    cookie: str = ""  # the signed cookie value; set only right after login


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_username: int = 5  # failures per window before the account's logins pause
    per_ip: int = 20  # failures per window from one address, across usernames
    window_s: int = 900


def now() -> datetime:
    return datetime.now(UTC)


def utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class Auth:
    def __init__(
        self,
        db: Database,
        secret_key: bytes,
        *,
        session_hours: float = 12.0,
        limits: RateLimits = RateLimits(),
        hasher: PasswordHasher | None = None,
    ):
        self.db = db
        self.session_ttl = timedelta(hours=session_hours)
        self.limits = limits
        self.hasher = hasher or PasswordHasher()  # argon2id with the library's RFC 9106 profile
        self._signer = URLSafeTimedSerializer(secret_key, salt="fanline-inbox-session")
        # verified when the username is unknown, so timing does not reveal which names exist
        self._dummy_hash = self.hasher.hash(secrets.token_hex(8))

    # ---- accounts -------------------------------------------------------------------------

    async def create_agent(
        self, username: str, password: str, *, role: str = "agent", display_name: str = ""
    ) -> Agent:
        username = check_username(username)
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise BadRequest(f"password must be at least {MIN_PASSWORD} characters")
        hashed = await asyncio.to_thread(self.hasher.hash, password)
        row = {"username": username, "display_name": display_name.strip() or username,
               "password_hash": hashed, "role": role, "active": True, "created_at": now()}  # fmt: skip
        return await self.db.run(_insert_agent, row)

    async def list_agents(self) -> list[Agent]:
        def get(conn: Connection) -> list[Agent]:
            return [_agent(r) for r in sql.all_agents(conn)]

        return await self.db.run(get)

    async def set_active(self, username: str, active: bool) -> Agent:
        def update(conn: Connection) -> Agent:
            row = sql.update_agent(conn, username.strip().lower(), active=active)
            if row is None:
                raise NotFound(f"no agent named {username!r}")
            if not active:  # a disabled agent is logged out everywhere, now
                sql.delete_agent_sessions(conn, row["id"])
            return _agent(row)

        return await self.db.run(update)

    # ---- login, sessions, logout ----------------------------------------------------------

    async def login(self, username: str, password: str, ip: str) -> Session:
        """A new session, or Unauthorized / TooManyAttempts. The same answer for any bad pair."""
        name = username.strip().lower()[:64]
        ip = (ip or "unknown")[:64]
        attempt, stored = await self.db.run(self._reserve_attempt, name, ip)
        hashed = stored["password_hash"] if stored is not None else self._dummy_hash
        ok = await asyncio.to_thread(self._verify, hashed, password) and stored is not None
        ok = ok and bool(stored["active"])
        rehash = None
        if ok and self.hasher.check_needs_rehash(hashed):
            rehash = await asyncio.to_thread(self.hasher.hash, password)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        agent = await self.db.run(self._after_login, name, attempt, ok, token, csrf, rehash)
        if agent is None:
            raise Unauthorized("wrong username or password")
        return Session(agent, csrf, self._signer.dumps(token))

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _reserve_attempt(
        self, conn: Connection, name: str, ip: str
    ) -> tuple[int, dict[str, Any] | None]:
        """Refuse (TooManyAttempts) while either rate limit is spent; else count this attempt as
        a failure now (it becomes a success only once the password matched) and return its id
        with the stored agent. Check and count are one serialised step per username and address."""
        sql.lock_login(conn, name, ip)  # PostgreSQL: advisory locks; SQLite: one writer anyway
        at = now()
        since = at - timedelta(seconds=self.limits.window_s)
        last_ok = sql.last_good_login(conn, name)
        user_since = max(since, utc(last_ok)) if last_ok else since  # success clears the count
        for count, oldest, limit in (
            (*sql.failed_logins(conn, since=user_since, username=name), self.limits.per_username),
            (*sql.failed_logins(conn, since=since, ip=ip), self.limits.per_ip),
        ):
            if count >= limit:
                age = (at - utc(oldest)).total_seconds() if oldest else 0.0
                wait = self.limits.window_s - age
                raise TooManyAttempts(max(1, int(wait) + 1))
        return sql.record_login(conn, name, ip, False, at), sql.agent_by_username(conn, name)

    def _after_login(
        self, conn: Connection, name: str, attempt: int, ok: bool, token: str, csrf: str,
        rehash: str | None,
    ) -> Agent | None:  # fmt: skip
        if not ok:
            return None
        at = now()
        sql.mark_login_ok(conn, attempt, at)
        values: dict[str, Any] = {"last_login_at": at}
        if rehash:
            values["password_hash"] = rehash
        row = sql.update_agent(conn, name, **values)
        assert row is not None  # the password matched this very agent in this login
        sql.insert_session(conn, _digest(token), row["id"], csrf, at, at + self.session_ttl)
        return _agent(row)

    async def session(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (unsigned, expired, logged out, disabled)."""
        token = self._token(cookie)
        if token is None:
            return None

        def get(conn: Connection) -> Session | None:
            row = sql.session_agent(conn, _digest(token), now())
            return Session(_agent(row), row["csrf"]) if row else None

        return await self.db.run(get)

    async def logout(self, cookie: str | None) -> None:
        token = self._token(cookie)
        if token is not None:
            await self.db.run(sql.delete_session, _digest(token))

    def _token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._signer.loads(cookie, max_age=int(self.session_ttl.total_seconds()))
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def check_csrf(session: Session, token: str | None) -> None:
    """Every state-changing request carries the session's CSRF token (form field or header)."""
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token")


def require_admin(session: Session) -> None:
    if not session.agent.is_admin:
        raise Forbidden("admins only")


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise BadRequest("username: 2-64 characters, letters, digits, '.', '_' or '-'")
    return name


def _insert_agent(conn: Connection, row: dict[str, Any]) -> Agent:
    if sql.agent_by_username(conn, row["username"]) is not None:
        raise Conflict(f"agent {row['username']!r} exists already")
    return _agent(sql.insert_agent(conn, row))


def _agent(row: dict[str, Any]) -> Agent:
    return Agent(row["id"], row["username"], row["display_name"], row["role"], bool(row["active"]))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
