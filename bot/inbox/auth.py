"""Who may answer fans: agent accounts, argon2 passwords, signed session cookies, CSRF, rate limits.

Off the message's path: every inbox page and API call passes through `Auth.session` first.
A session is a random token in an itsdangerous-signed, HTTP-only cookie; the database keeps
only its sha256, the agent and a CSRF token, so logging out or disabling an agent ends it at
once. Failed logins are counted per username and per client address.
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

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Connection

from bot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from bot.storage import Database
from bot.storage.inbox_tables import agent_sessions, agents, login_attempts

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
            return [_agent(r) for r in conn.execute(sa.select(agents).order_by(agents.c.id))]

        return await self.db.run(get)

    async def set_active(self, username: str, active: bool) -> Agent:
        def update(conn: Connection) -> Agent:
            row = conn.execute(
                agents.update()
                .where(agents.c.username == username.strip().lower())
                .values(active=active)
                .returning(*agents.c)
            ).first()
            if row is None:
                raise NotFound(f"no agent named {username!r}")
            if not active:  # a disabled agent is logged out everywhere, now
                conn.execute(agent_sessions.delete().where(agent_sessions.c.agent_id == row.id))
            return _agent(row)

        return await self.db.run(update)

    # ---- login, sessions, logout ----------------------------------------------------------

    async def login(self, username: str, password: str, ip: str) -> Session:
        """A new session, or Unauthorized / TooManyAttempts. The same answer for any bad pair."""
        name = username.strip().lower()[:64]
        ip = (ip or "unknown")[:64]
        stored = await self.db.run(self._before_login, name, ip)
        hashed = stored.password_hash if stored is not None else self._dummy_hash
        ok = await asyncio.to_thread(self._verify, hashed, password) and stored is not None
        ok = ok and bool(stored.active)
        rehash = None
        if ok and self.hasher.check_needs_rehash(hashed):
            rehash = await asyncio.to_thread(self.hasher.hash, password)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        agent = await self.db.run(self._after_login, name, ip, ok, token, csrf, rehash)
        if agent is None:
            raise Unauthorized("wrong username or password")
        return Session(agent, csrf, self._signer.dumps(token))

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _before_login(self, conn: Connection, name: str, ip: str) -> Any:
        at = now()
        since = at - timedelta(seconds=self.limits.window_s)
        last_ok = conn.execute(
            sa.select(sa.func.max(login_attempts.c.at)).where(
                login_attempts.c.username == name, login_attempts.c.ok.is_(True)
            )
        ).scalar()
        user_since = max(since, utc(last_ok)) if last_ok else since  # success clears the count
        for column, value, limit, start in (
            (login_attempts.c.username, name, self.limits.per_username, user_since),
            (login_attempts.c.ip, ip, self.limits.per_ip, since),
        ):
            count, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(login_attempts.c.at)).where(
                    column == value, login_attempts.c.ok.is_(False), login_attempts.c.at > start
                )
            ).one()
            if count >= limit:
                wait = self.limits.window_s - (at - utc(oldest)).total_seconds()
                raise TooManyAttempts(max(1, int(wait) + 1))
        return conn.execute(sa.select(agents).where(agents.c.username == name)).first()

    def _after_login(
        self, conn: Connection, name: str, ip: str, ok: bool, token: str, csrf: str,
        rehash: str | None,
    ) -> Agent | None:  # fmt: skip
        at = now()
        conn.execute(login_attempts.insert().values(username=name, ip=ip, ok=ok, at=at))
        if not ok:
            return None
        values: dict[str, Any] = {"last_login_at": at}
        if rehash:
            values["password_hash"] = rehash
        row = conn.execute(
            agents.update().where(agents.c.username == name).values(values).returning(*agents.c)
        ).one()
        conn.execute(
            agent_sessions.insert().values(
                token_hash=_digest(token), agent_id=row.id, csrf=csrf, created_at=at,
                expires_at=at + self.session_ttl,
            )
        )  # fmt: skip
        return _agent(row)

    async def session(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (unsigned, expired, logged out, disabled)."""
        token = self._token(cookie)
        if token is None:
            return None

        def get(conn: Connection) -> Session | None:
            row = conn.execute(
                sa.select(agents, agent_sessions.c.csrf)
                .join(agent_sessions, agent_sessions.c.agent_id == agents.c.id)
                .where(
                    agent_sessions.c.token_hash == _digest(token),
                    agent_sessions.c.expires_at > now(),
                    agents.c.active.is_(True),
                )
            ).first()
            return Session(_agent(row), row.csrf) if row else None

        return await self.db.run(get)

    async def logout(self, cookie: str | None) -> None:
        token = self._token(cookie)
        if token is not None:
            digest = _digest(token)
            await self.db.run(
                lambda c: c.execute(
                    agent_sessions.delete().where(agent_sessions.c.token_hash == digest)
                )
            )

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
    exists = conn.execute(
        sa.select(agents.c.id).where(agents.c.username == row["username"])
    ).first()
    if exists is not None:
        raise Conflict(f"agent {row['username']!r} exists already")
    new = conn.execute(agents.insert().values(row).returning(*agents.c)).one()
    return _agent(new)


def _agent(row: Any) -> Agent:
    return Agent(row.id, row.username, row.display_name, row.role, bool(row.active))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
