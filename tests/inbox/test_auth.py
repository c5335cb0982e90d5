"""Agent accounts, sessions and login rate limiting on a real database."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from bot.errors import BadRequest, Conflict, Forbidden, Unauthorized
from bot.inbox.auth import (
    Auth,
    RateLimits,
    Session,
    TooManyAttempts,
    check_csrf,
    require_admin,
)
from bot.storage import Store
from bot.storage.inbox_tables import agents

from .conftest import FAST_HASHER, PASSWORD, Team


async def test_passwords_are_stored_as_argon2id_hashes(store: Store) -> None:
    auth = Auth(store.db, b"k", hasher=PasswordHasher())  # the library's default profile
    await auth.create_agent("Ana", PASSWORD)
    stored = await store.db.run(lambda c: c.execute(sa.select(agents.c.password_hash)).scalar_one())
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    session = await auth.login("ana", PASSWORD, "10.0.0.1")  # usernames are case-insensitive
    assert session.agent.username == "ana" and session.agent.role == "agent"


async def test_a_session_lives_in_a_signed_cookie_until_logout(team: Team) -> None:
    session = await team.auth.login("ana", PASSWORD, "10.0.0.1")
    again = await team.auth.session(session.cookie)
    assert again is not None and again.agent == team.ana and again.csrf == session.csrf
    assert await team.auth.session(session.cookie[:-2] + "xx") is None  # tampered signature
    other_key = Auth(team.auth.db, b"another-secret", hasher=FAST_HASHER)
    assert await other_key.session(session.cookie) is None
    await team.auth.logout(session.cookie)
    assert await team.auth.session(session.cookie) is None


async def test_wrong_password_unknown_user_and_disabled_agent_look_the_same(team: Team) -> None:
    for name, password in (("ana", "wrong password!"), ("nobody", PASSWORD)):
        with pytest.raises(Unauthorized, match="wrong username or password"):
            await team.auth.login(name, password, "10.0.0.1")
    live = await team.auth.login("ben", PASSWORD, "10.0.0.2")
    await team.auth.set_active("ben", False)
    assert await team.auth.session(live.cookie) is None  # disabling ends sessions at once
    with pytest.raises(Unauthorized):
        await team.auth.login("ben", PASSWORD, "10.0.0.2")


async def test_failed_logins_are_rate_limited_per_username(store: Store) -> None:
    auth = Auth(store.db, b"k", hasher=FAST_HASHER, limits=RateLimits(per_username=3, per_ip=100))
    await auth.create_agent("ana", PASSWORD)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.login("ana", "guess guess", "10.0.0.9")
    with pytest.raises(TooManyAttempts) as blocked:
        await auth.login("ana", PASSWORD, "10.0.0.10")  # even the right password waits
    assert 0 < blocked.value.retry_after <= 901 and blocked.value.status == 429


async def test_failed_logins_are_rate_limited_per_address(store: Store) -> None:
    auth = Auth(store.db, b"k", hasher=FAST_HASHER, limits=RateLimits(per_username=50, per_ip=4))
    await auth.create_agent("ana", PASSWORD)
    for name in ("a1", "a2", "a3", "a4"):
        with pytest.raises(Unauthorized):
            await auth.login(name, "whatever123", "10.0.0.66")
    with pytest.raises(TooManyAttempts):
        await auth.login("ana", PASSWORD, "10.0.0.66")
    assert (await auth.login("ana", PASSWORD, "10.0.0.67")).agent.username == "ana"


class CountingHasher(PasswordHasher):
    """The library's hasher, counting how many passwords it was asked to check."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        type(self).verified += 1
        return super().verify(hash, password)


async def test_parallel_guesses_cannot_slip_under_the_limit(store: Store) -> None:
    hasher = CountingHasher(time_cost=1, memory_cost=8192, parallelism=1)
    auth = Auth(store.db, b"k", hasher=hasher, limits=RateLimits(per_username=5, per_ip=1000))
    await auth.create_agent("ana", PASSWORD)
    CountingHasher.verified = 0
    guesses = [f"guess number {i}" for i in range(119)] + [PASSWORD]
    results = await asyncio.gather(
        *(auth.login("ana", g, f"10.1.{i // 250}.{i % 250}") for i, g in enumerate(guesses)),
        return_exceptions=True,
    )
    blocked = [r for r in results if isinstance(r, TooManyAttempts)]
    assert CountingHasher.verified <= 5  # only the attempts within the limit were evaluated
    assert len(blocked) >= 115
    assert not any(isinstance(r, Session) for r in results)  # the right one came too late


async def test_a_successful_login_clears_the_username_count(store: Store) -> None:
    auth = Auth(store.db, b"k", hasher=FAST_HASHER, limits=RateLimits(per_username=2, per_ip=100))
    await auth.create_agent("ana", PASSWORD)
    with pytest.raises(Unauthorized):
        await auth.login("ana", "typo typo typo", "10.0.0.1")
    await auth.login("ana", PASSWORD, "10.0.0.1")
    with pytest.raises(Unauthorized):  # one failure since the success: not blocked yet
        await auth.login("ana", "typo typo typo", "10.0.0.1")


async def test_account_rules(team: Team) -> None:
    with pytest.raises(Conflict):
        await team.auth.create_agent("ANA", PASSWORD)
    with pytest.raises(BadRequest, match="at least"):
        await team.auth.create_agent("cleo", "short")
    with pytest.raises(BadRequest, match="username"):
        await team.auth.create_agent("no spaces please", PASSWORD)
    with pytest.raises(BadRequest, match="role"):
        await team.auth.create_agent("cleo", PASSWORD, role="owner")
    assert [a.username for a in await team.auth.list_agents()] == ["root", "ana", "ben"]


async def test_csrf_and_roles(team: Team) -> None:
    session = await team.auth.login("ana", PASSWORD, "10.0.0.1")
    check_csrf(session, session.csrf)
    for bad in (None, "", session.csrf + "x"):
        with pytest.raises(Forbidden):
            check_csrf(session, bad)
    with pytest.raises(Forbidden):
        require_admin(session)
    require_admin(await team.auth.login("root", PASSWORD, "10.0.0.1"))
