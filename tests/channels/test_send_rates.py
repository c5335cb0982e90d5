"""One send rate per sending number across processes (issue 17, item 2): the GCRA row in the
database (SQLite; PostgreSQL when FANLINE_TEST_DATABASE_URL is set), daily caps, 20429 / 30022
slowing a number down, and two senders sharing one rate against the local Twilio server.

Two `Store` objects on one database stand for two processes: each has its own engine,
connections and (on SQLite) writer thread. Assertions are on the ledger of grants (the
database's clock), never on how fast anything ran."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.messages import DeliveryReport
from bot.outbound import OutboundSender
from bot.pacing import LocalRates, RateRule, RedisRates, SharedRates, rate_rules, rule_for
from bot.settings import load_settings
from bot.storage import send_rates
from bot.storage.store import Store

from .conftest import LocalTwilio
from .test_outbound_store import queue_replies

NUMBER = "+12125550100"  # a US long code


@pytest.fixture
def stores(database_url: str) -> Iterator[list[Store]]:
    opened = [Store.open(database_url, hash_key=b"test-key") for _ in range(2)]
    yield opened
    for s in opened:
        s.close()


def starts(ledger: list[send_rates.Grant]) -> list[float]:
    """When each granted (and not handed back) send may go, in the database's clock."""
    back = {id(g) for g in ledger[1::2] if g is not None}
    return sorted(
        g.now + g.wait for g in ledger[::2] if g is not None and g.ok and id(g) not in back
    )


def keeper(ledger: list) -> object:
    """The pacer's ledger hook: (grant, None) per grant, (None, grant) per grant handed back."""
    return lambda _k, w, g: ledger.extend((g, None) if w > 0 else (None, g))


def assert_within_rate(times: list[float], rate: float, burst: float) -> None:
    """By any grant's time t, at most burst + rate * (t - first) segments (one each here)."""
    for n, t in enumerate(times, start=1):
        assert n <= burst + rate * (t - times[0]) + 1e-3, (n, t - times[0])  # float epoch seconds


async def test_two_processes_draw_from_one_rate(stores: list[Store]) -> None:
    # a slow rate: all 60 requests arrive before the slots run out, however busy the machine
    rule = RateRule(per_second=4, burst=3)
    ledger: list[send_rates.Grant] = []
    pacers = [SharedRates(s.db, lambda _k: rule, keeper(ledger)) for s in stores]
    await asyncio.gather(*(p.take(NUMBER, 1) for p in pacers * 30))
    times = starts(ledger)
    assert len(times) == 60
    assert_within_rate(times, rule.per_second, rule.bucket)
    # and the slots are used, not wasted: the 60th comes (60 - burst) / rate after the first
    assert times[-1] - times[0] == pytest.approx((60 - 3) / 4, abs=0.05)


async def test_one_bucket_per_process_would_double_the_rate() -> None:
    """What the shared row fixes: two processes with their own buckets both send at the rate."""
    rule = RateRule(per_second=20, burst=3)
    waits = [await p.take(NUMBER, 1) for p in [LocalRates(lambda _k: rule) for _ in range(2)] * 30]
    assert max(g.wait for g in waits) < (60 - 3) / 20 / 1.9


async def test_segments_weigh_and_unused_grants_go_back(stores: list[Store]) -> None:
    rule = RateRule(per_second=1, burst=1)  # slow: the slots stay ahead of a busy machine
    ledger: list[send_rates.Grant] = []
    pacer = SharedRates(stores[0].db, lambda _k: rule, keeper(ledger))
    first = await pacer.take(NUMBER, 3)  # a 3-segment text: 3 s of the number's rate
    second = await pacer.take(NUMBER, 1)
    assert start(second) - start(first) == pytest.approx(3.0, abs=1e-3)
    await pacer.give_back(NUMBER, 1, second)  # not claimed (the fan opted out): slot free again
    third = await pacer.take(NUMBER, 1)
    assert start(third) == pytest.approx(start(second), abs=1e-3)
    assert [g.today for g in ledger[::2] if g is not None] == [1, 2, 2]


def start(grant: object) -> float:
    """When a grant may be used, in the database's (or Redis's) clock: no timing involved."""
    return grant.ticket.now + grant.ticket.wait  # type: ignore[attr-defined]


async def test_the_daily_cap_is_shared_and_refuses_until_tomorrow(stores: list[Store]) -> None:
    rule = RateRule(per_second=1000, daily_cap=5)
    pacers = [SharedRates(s.db, lambda _k: rule) for s in stores]
    grants = [await p.take(NUMBER, 1) for p in pacers * 4]
    assert [g.ok for g in grants] == [True] * 5 + [False] * 3
    assert 0 < grants[-1].tomorrow_s <= 86400
    other = await pacers[0].take("+12125550101", 1)  # another number has its own cap
    assert other.ok


async def test_a_slowed_number_halves_its_rate_and_pauses(stores: list[Store]) -> None:
    rule = RateRule(per_second=10, burst=1)
    ledger: list[send_rates.Grant] = []
    pacer = SharedRates(stores[0].db, lambda _k: rule, keeper(ledger))
    first = await pacer.take(NUMBER, 1)
    await pacer.slow_down(NUMBER, 2.0)  # a 20429 with Retry-After: 2
    after = await pacer.take(NUMBER, 1)
    nxt = await pacer.take(NUMBER, 1)
    assert ledger[-2].rate == 5.0  # halved
    assert start(after) >= first.ticket.now + 2.0  # nothing from the number during the pause
    assert start(nxt) - start(after) == pytest.approx(1 / 5, abs=1e-3)
    await pacer.slow_down(NUMBER, 0)
    await pacer.take(NUMBER, 1)
    assert ledger[-2].rate == 2.5  # halved again while still slowed


async def test_two_senders_share_one_rate_at_the_provider(
    stores: list[Store], twilio: LocalTwilio
) -> None:
    rule = RateRule(per_second=8, burst=2)
    for n in range(4):
        await queue_replies(stores[0], f"+1212555{n:04d}", [f"text {n}-{k}" for k in range(4)])
    ledger: list[send_rates.Grant] = []
    gateways = [twilio.gateway(from_number=NUMBER) for _ in stores]
    senders = []
    for store, gateway in zip(stores, gateways, strict=True):
        sender = OutboundSender(store, gateway, rate_per_second=1, rates={"": rule}, lanes=2)
        sender.pacer = SharedRates(store.db, sender.rule, keeper(ledger))
        senders.append(sender)
    try:
        await asyncio.gather(*(s.drain() for s in senders))
    finally:
        for gateway in gateways:
            await gateway.aclose()
    accepted = twilio.server.accepted()
    assert len(accepted) == 16 and len({m["body"] for m in accepted}) == 16  # each once
    assert sum(s.counts["sent"] for s in senders) == 16
    assert_within_rate(starts(ledger), rule.per_second, rule.bucket)


async def _drain_with_shared_rate(store: Store, twilio: LocalTwilio) -> OutboundSender:
    """Send what is queued through the local Twilio server, paced by the shared rate."""
    gateway = twilio.gateway(from_number=NUMBER)
    sender = OutboundSender(store, gateway, rate_per_second=1, rates={"": RateRule(10)})
    sender.pacer = SharedRates(store.db, sender.rule)
    try:
        await sender.drain()
    finally:
        await gateway.aclose()
    return sender


async def test_20429_from_twilio_slows_the_number(stores: list[Store], twilio: LocalTwilio) -> None:
    await queue_replies(stores[0], "+12125550001", ["one"])
    twilio.server.set_faults(count_429=1, retry_after=1)
    sender = await _drain_with_shared_rate(stores[0], twilio)
    assert sender.counts["retried"] == 1
    [row] = [r for r in await rate_rows(stores[0]) if r["key"] == ""]
    assert row["slow_factor"] == 0.5


async def test_30022_in_a_delivery_report_slows_the_number(
    stores: list[Store], twilio: LocalTwilio
) -> None:
    await queue_replies(stores[0], "+12125550002", ["one"])
    await _drain_with_shared_rate(stores[0], twilio)
    [message] = twilio.server.accepted()
    report = DeliveryReport(message["sid"], "undelivered", 30022)
    assert await stores[1].apply_delivery_report(report)  # the web process gets the callback
    [row] = [r for r in await rate_rows(stores[0]) if r["key"] == ""]
    assert row["slow_factor"] == 0.5


async def rate_rows(store: Store) -> list[dict]:
    _now, _day, rows = await store.db.run(send_rates.states)
    return rows


def test_defaults_by_kind_and_configured_numbers() -> None:
    configured = {"+12125550100": RateRule(2.5, daily_cap=2000)}
    assert rule_for("+12125550100", configured, 10).per_second == 2.5
    assert rule_for("+12125550199", configured, 10).per_second == 1  # US long code
    assert rule_for("+18885550100", configured, 10).per_second == 3  # toll-free
    assert rule_for("55555", configured, 10).per_second == 100  # short code
    assert rule_for("MG" + "0" * 32, configured, 10).per_second == 10  # configured default


def test_rate_limits_in_config_yml_are_validated_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "fanline:\n"
        "  rate_limits:\n"
        "    '+12125550100': 2\n"
        "    '+18885550100': {per_second: 3, burst: 6, daily_cap: 10000}\n"
        "    '55555': {per_second: fast}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "x"})
    assert str(err.value.location).startswith(f"{tmp_path / 'config.yml'}:5")
    assert "per_second" in str(err.value)
    (tmp_path / "config.yml").write_text(
        "fanline:\n  rate_limits:\n    '+12125550100': 2\n"
        "    '+18885550100': {per_second: 3, burst: 6, daily_cap: 10000}\n",
        encoding="utf-8",
    )
    rules = load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "x"}).rate_limits
    assert rules == {"+12125550100": RateRule(2.0), "+18885550100": RateRule(3.0, 6.0, 10000)}
    with pytest.raises(ConfigError, match="unknown setting"):
        rate_rules({"+1": {"per_minute": 3}}, "config.yml", 1)


async def test_outbox_status_shows_each_numbers_rate_today_and_backlog(
    stores: list[Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.outbox_cli import _rates

    (tmp_path / "config.yml").write_text(
        "fanline:\n  rate_limits:\n    '+12125550100': {per_second: 2, daily_cap: 500}\n",
        encoding="utf-8",
    )
    env = {"FANLINE_SECRET_KEY": "x", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
           "TWILIO_NUMBER": "+18885550100"}  # fmt: skip
    settings = load_settings(tmp_path, env=env)
    await queue_replies(stores[0], "+12125550003", ["one", "two", "three"])
    pacer = SharedRates(stores[0].db, lambda _k: RateRule(2, daily_cap=500))
    await pacer.take("+12125550100", 1)
    await pacer.slow_down("", 0)
    await _rates(stores[1], settings)
    out = capsys.readouterr().out
    [mine] = [line for line in out.splitlines() if line.startswith("+12125550100")]
    assert mine.split()[1:5] == ["US", "long", "code", "2"] and "1 / 500" in mine
    [default] = [line for line in out.splitlines() if line.startswith("(default)")]
    assert "+18885550100" in default and "toll-free" in default and "slowed" in default
    assert sum(int(n) for n in default.split()[-2:]) == 3  # three replies queued


# ---- the same rate in Redis (fanline.redis_url); skipped when no Redis answers -------------

REDIS_URL = os.environ.get("FANLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_up() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")


@pytest.fixture
async def redis_pacers() -> AsyncIterator[Callable[..., RedisRates]]:
    """RedisRates under a key prefix of this test's own (two of them: two processes)."""
    prefix = f"fanline:test:{uuid.uuid4().hex}:"
    made: list[RedisRates] = []

    def make(rule: RateRule, ledger: list | None = None) -> RedisRates:
        pacer = RedisRates(REDIS_URL, lambda _k: rule, keeper(ledger) if ledger is not None
                           else None, prefix=prefix)  # fmt: skip
        made.append(pacer)
        return pacer

    yield make
    for pacer in made:
        async for key in pacer.redis.scan_iter(match=prefix + "*"):
            await pacer.redis.delete(key)
        await pacer.aclose()


@needs_redis
async def test_redis_two_processes_draw_from_one_rate(redis_pacers) -> None:
    rule = RateRule(per_second=4, burst=3)
    ledger: list = []
    pacers = [redis_pacers(rule, ledger), redis_pacers(rule, ledger)]
    await asyncio.gather(*(p.take(NUMBER, 1) for p in pacers * 30))
    times = starts(ledger)
    assert len(times) == 60
    assert_within_rate(times, rule.per_second, rule.bucket)
    assert times[-1] - times[0] == pytest.approx((60 - 3) / 4, abs=0.05)


@needs_redis
async def test_redis_caps_weighs_gives_back_and_slows_down(redis_pacers) -> None:
    capped = redis_pacers(RateRule(per_second=1000, daily_cap=2))
    assert [(await capped.take(NUMBER, 1)).ok for _ in range(3)] == [True, True, False]
    ledger: list = []
    pacer = redis_pacers(RateRule(per_second=1, burst=1), ledger)
    first = await pacer.take("+12125550101", 3)
    second = await pacer.take("+12125550101", 1)
    assert start(second) - start(first) == pytest.approx(3.0, abs=1e-3)
    await pacer.give_back("+12125550101", 1, second)
    assert start(await pacer.take("+12125550101", 1)) == pytest.approx(start(second), abs=1e-3)
    await pacer.slow_down("+12125550101", 0)
    await pacer.take("+12125550101", 1)
    assert ledger[-2].rate == 0.5
    _now, _day, rows = await pacer.states()
    assert {r["key"]: r["day_count"] for r in rows} == {NUMBER: 2, "+12125550101": 3}


@needs_redis
async def test_redis_30022_in_a_delivery_report_slows_the_number(
    stores: list[Store], twilio: LocalTwilio, redis_pacers
) -> None:
    await queue_replies(stores[0], "+12125550004", ["one"])
    gateway = twilio.gateway(from_number=NUMBER)
    sender = OutboundSender(stores[0], gateway, rate_per_second=1, rates={"": RateRule(10)})
    sender.pacer = redis_pacers(RateRule(10))
    stores[1].rate_hook = sender.pacer.slow_down  # as sender_for wires it in every process
    try:
        await sender.drain()
    finally:
        await gateway.aclose()
    [message] = twilio.server.accepted()
    assert await stores[1].apply_delivery_report(DeliveryReport(message["sid"], "failed", 30022))
    _now, _day, rows = await sender.pacer.states()
    assert [(r["key"], r["slow_factor"]) for r in rows] == [("", 0.5)]
    assert await rate_rows(stores[0]) == []  # nothing in the database's rows


async def test_texts_over_the_daily_cap_wait_for_tomorrow_still_queued(
    stores: list[Store], twilio: LocalTwilio
) -> None:
    ids = await queue_replies(stores[0], "+12125550005", ["one", "two", "three", "four"])
    gateway = twilio.gateway(from_number=NUMBER)
    rule = RateRule(1000, daily_cap=2)
    sender = OutboundSender(stores[0], gateway, rate_per_second=1, rates={"": rule})
    sender.pacer = SharedRates(stores[0].db, sender.rule)
    try:
        await sender.drain()
    finally:
        await gateway.aclose()
    assert len(twilio.server.accepted()) == 2 and sender.counts["capped"] == 2
    assert await stores[0].outbox_counts() == {"sent": 2, "queued": 2}
    backlog = await stores[0].outbox_backlog()
    assert backlog[""] == (0, 2)  # due tomorrow, not now
    assert len(ids) == 4
