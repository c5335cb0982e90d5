"""Pacing for the outbox sender (step 10): the rate of each sending number (shared by every
process through the database, or a token bucket in this process), and the pool of free
connections to the provider that each send's claim waits for.

Both are taken *before* a row is claimed, so a claimed row goes to the provider at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class TokenBucket:
    """`rate` tokens per second, bursts up to `burst`; acquire() waits for a token."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> float:
        """Take a token now (possibly going into debt); return how long to wait for it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def ready(self) -> bool:
        """A token is there now (taking it would not wait)."""
        now = self._clock()
        return min(self.burst, self._tokens + (now - self._at) * self.rate) >= 1

    def give_back(self) -> None:
        """Return a token that was taken but not used (its row was not claimed)."""
        self._tokens = min(self.burst, self._tokens + 1)

    async def acquire(self) -> None:
        wait = self.take()
        if wait > 0:
            await asyncio.sleep(wait)


class Connections:
    """Free connections to the provider, taken in groups: `take` waits until half of them
    (or as many as are asked for, if fewer) are free, then takes up to what is asked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._group = max(1, size // 2)
        self._freed = asyncio.Event()

    async def take(self, wanted: int) -> int:
        need = min(wanted, self._group)
        while self.free < need:
            self._freed.clear()
            await self._freed.wait()
        taken = min(self.free, wanted)
        self.free -= taken
        return taken

    def release(self, count: int) -> None:
        self.free += count
        if self.free >= self._group:  # waking every waiting lane per freed connection costs
            self._freed.set()


# ---- one send rate per sending number, shared by every process (issue 17, item 2) -----------

SHORT_CODE = re.compile(r"^\d{5,6}$")
TOLL_FREE = re.compile(r"^\+1(800|833|844|855|866|877|888)\d{7}$")
# geographic US/Canada numbers; N00 codes (500: Twilio's test numbers, 900...) are not long codes
US_LONG_CODE = re.compile(r"^\+1(?![5679]00)[2-9]\d{2}[2-9]\d{6}$")
# segments per second a number of each kind is allowed by the carriers (Twilio's figures)
DEFAULT_RATES = {"short code": 100.0, "toll-free": 3.0, "US long code": 1.0}
RULE_KEYS = ("per_second", "burst", "daily_cap")
SLOW_CODES = frozenset({20429, 30022})  # too many requests; US A2P 10DLC throughput exceeded
SLOW_HOLD_S = 60.0  # a 20429 / 30022 keeps the number's rate lowered this long after the last one


@dataclass(frozen=True, slots=True)
class RateRule:
    """What one sender may send: segments per second, a burst (segments), messages per UTC day."""

    per_second: float
    burst: float | None = None  # None: max(5, per_second)
    daily_cap: int | None = None

    @property
    def bucket(self) -> float:
        return self.burst if self.burst is not None else max(5.0, self.per_second)


def number_kind(sender: str | None) -> str:
    if not sender:
        return "default"
    if sender.startswith("MG"):
        return "Messaging Service"
    for kind, pattern in (("short code", SHORT_CODE), ("toll-free", TOLL_FREE),
                          ("US long code", US_LONG_CODE)):  # fmt: skip
        if pattern.match(sender):
            return kind
    return "other"


def rule_for(sender: str | None, configured: Mapping[str, RateRule], fallback: float) -> RateRule:
    """The configured rule of `sender`, else its kind's default, else `send_rate_per_second`."""
    if sender in configured:
        return configured[sender]
    return RateRule(DEFAULT_RATES.get(number_kind(sender), fallback))


def rate_rules(value: Any, path: str, line: int | None) -> dict[str, RateRule]:
    """`fanline.rate_limits:` per sending number (or Messaging Service SID): a number (segments
    per second) or a mapping of per_second, burst, daily_cap. Errors name file and line."""
    from bot.errors import ConfigError, Location

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping of sending number to rate",
                          Location(path, line, "fanline.rate_limits"))  # fmt: skip
    lines = getattr(value, "key_lines", {})
    rules: dict[str, RateRule] = {}
    for sender, spec in value.items():
        where = Location(path, lines.get(sender, line), f"fanline.rate_limits.{sender}")
        if not isinstance(spec, dict):
            spec = {"per_second": spec}
        unknown = set(spec) - set(RULE_KEYS)
        if unknown:
            raise ConfigError(f"unknown setting {sorted(unknown)[0]!r}: use "
                              f"{', '.join(RULE_KEYS)}", where)  # fmt: skip
        got = {}
        for key in RULE_KEYS:
            v = spec.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"{key} must be a positive number, got {v!r}", where)
            got[key] = v
        if "per_second" not in got:
            raise ConfigError("per_second is required (segments per second)", where)
        cap = got.get("daily_cap")
        rules[str(sender)] = RateRule(
            float(got["per_second"]),
            float(got["burst"]) if "burst" in got else None,
            int(cap) if cap is not None else None,
        )
    return rules


@dataclass(frozen=True, slots=True)
class Grant:
    ok: bool  # False: the sender's daily cap is reached
    wait: float  # seconds until the grant may be used
    tomorrow_s: float = 0.0  # refused: seconds until the cap opens again
    ticket: Any = None  # the shared pacer's record of the grant (its ledger names it)


class LocalRates:
    """A token bucket per sender in this process only (one process, tests, benchmarks)."""

    shared = False

    def __init__(self, rules: Callable[[str], RateRule]) -> None:
        self._rules = rules
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            rule = self._rules(key)
            bucket = self._buckets[key] = TokenBucket(rule.per_second, rule.burst)
        return bucket

    async def take(self, key: str, weight: float) -> Grant:
        return Grant(True, self._bucket(key).take())

    async def give_back(self, key: str, weight: float, grant: Grant | None = None) -> None:
        self._bucket(key).give_back()

    async def slow_down(self, key: str, pause_s: float) -> None:
        bucket = self._bucket(key)
        bucket._tokens = min(bucket._tokens, 0.0) - pause_s * bucket.rate


class SharedRates:
    """The rate of each sender held in the database (`bot.storage.send_rates`): every process
    and machine on that database draws from the same GCRA row, one statement per grant."""

    shared = True

    def __init__(self, db: Any, rules: Callable[[str], RateRule],
                 on_grant: Callable[[str, float, Any], None] | None = None) -> None:  # fmt: skip
        self.db = db
        self._rules = rules
        self._on_grant = on_grant  # tests and benchmarks keep a ledger of grants
        self._rates: dict[str, float] = {}  # the rate in force at the last grant, per key

    async def take(self, key: str, weight: float) -> Grant:
        from bot.storage import send_rates

        rule = self._rules(key)
        g = await self.db.run(send_rates.take, key, weight, rule.per_second, rule.bucket,
                              rule.daily_cap)  # fmt: skip
        self._rates[key] = g.rate
        if self._on_grant is not None:
            self._on_grant(key, weight, g)
        return Grant(g.ok, g.wait, g.tomorrow_s, g)

    async def give_back(self, key: str, weight: float, grant: Grant | None = None) -> None:
        from bot.storage import send_rates

        rate = self._rates.get(key) or self._rules(key).per_second
        await self.db.run(send_rates.give_back, key, weight, rate)
        if self._on_grant is not None and grant is not None:
            self._on_grant(key, -weight, grant.ticket)  # the ledger: that grant was not used

    async def slow_down(self, key: str, pause_s: float) -> None:
        from bot.storage import send_rates

        rule = self._rules(key)  # the pause empties the bucket: no burst right after it
        await self.db.run(send_rates.slow_down, key, pause_s + rule.bucket / rule.per_second,
                          SLOW_HOLD_S)  # fmt: skip


# The same GCRA in Redis (`fanline.redis_url`): one script per grant, in Redis's clock. Hash
# fields: tat, factor, until (slowed down), day (UTC day number), count (texts that day).
_REDIS_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local day = math.floor(now / 86400)
local h = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'until', 'day', 'count')
local tat, factor = tonumber(h[1]) or 0, tonumber(h[2]) or 1
if (tonumber(h[3]) or 0) <= now then factor = 1 end
local count = tonumber(h[5]) or 0
if tonumber(h[4]) ~= day then count = 0 end
local w, rate, burst, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local eff = rate * factor
local ok = 0
if count + 1 <= cap then
  ok = 1
  count = count + 1
  tat = math.max(tat, now) + w / eff
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'factor', tostring(factor), 'day', day,
           'count', count)
redis.call('EXPIRE', KEYS[1], 172800)
return {ok, tostring(now), tostring(eff), count, tostring(tat)}
"""
_REDIS_GIVE_BACK = """
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat'))
if tat == nil then return 0 end
local count = tonumber(redis.call('HGET', KEYS[1], 'count')) or 0
redis.call('HSET', KEYS[1], 'tat', tostring(tat - tonumber(ARGV[1]) / tonumber(ARGV[2])),
           'count', math.max(count - 1, 0))
return 1
"""
_REDIS_SLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local h = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'until')
local factor = tonumber(h[2]) or 1
if (tonumber(h[3]) or 0) <= now then factor = 1 end
factor = math.max(tonumber(ARGV[3]), factor * 0.5)
local tat = math.max(tonumber(h[1]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'factor', tostring(factor),
           'until', tostring(now + tonumber(ARGV[2])))
redis.call('EXPIRE', KEYS[1], 172800)
return 1
"""


class RedisRates(SharedRates):
    """Each sender's rate in Redis instead of the database (`fanline.redis_url`): one script
    call per grant, in Redis's clock. Same rules, caps and slow-downs as the database's."""

    def __init__(self, url: str, rules: Callable[[str], RateRule],
                 on_grant: Callable[[str, float, Any], None] | None = None,
                 prefix: str = "fanline:send_rate:") -> None:  # fmt: skip
        import redis.asyncio as redis

        super().__init__(None, rules, on_grant)
        self.url = url
        self.prefix = prefix
        self.redis = redis.Redis.from_url(url)
        self._take = self.redis.register_script(_REDIS_TAKE)
        self._give_back = self.redis.register_script(_REDIS_GIVE_BACK)
        self._slow = self.redis.register_script(_REDIS_SLOW)

    async def take(self, key: str, weight: float) -> Grant:
        from bot.storage.send_rates import NO_CAP
        from bot.storage.send_rates import Grant as Granted

        rule = self._rules(key)
        cap = NO_CAP if rule.daily_cap is None else rule.daily_cap
        ok, now, eff, count, tat = await self._take(
            keys=[self.prefix + key], args=[weight, rule.per_second, rule.bucket, cap]
        )
        now, eff, tat = float(now), float(eff), float(tat)
        if ok:
            wait = max(0.0, tat - (weight - 1 + rule.bucket) / eff - now)
            g = Granted(True, wait, now, eff, int(count))
        else:
            g = Granted(False, 0.0, now, eff, int(count), 86400.0 - now % 86400.0)
        self._rates[key] = eff
        if self._on_grant is not None:
            self._on_grant(key, weight, g)
        return Grant(g.ok, g.wait, g.tomorrow_s, g)

    async def give_back(self, key: str, weight: float, grant: Grant | None = None) -> None:
        rate = self._rates.get(key) or self._rules(key).per_second
        await self._give_back(keys=[self.prefix + key], args=[weight, rate])
        if self._on_grant is not None and grant is not None:
            self._on_grant(key, -weight, grant.ticket)

    async def slow_down(self, key: str, pause_s: float) -> None:
        rule = self._rules(key)
        pause = pause_s + rule.bucket / rule.per_second
        await self._slow(keys=[self.prefix + key], args=[pause, SLOW_HOLD_S, 1 / 16])

    async def states(self) -> tuple[float, str, list[dict[str, Any]]]:
        """Redis's clock and day, and every sender's hash (as `send_rates.states` gives them)."""
        sec, usec = await self.redis.time()
        now = sec + usec / 1e6
        rows = []
        async for name in self.redis.scan_iter(match=self.prefix + "*"):
            h = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(name)).items()}
            rows.append({"key": name.decode()[len(self.prefix) :],
                         "tat": float(h.get("tat", 0)), "slow_factor": float(h.get("factor", 1)),
                         "slow_until": float(h.get("until", 0)), "day": h.get("day", ""),
                         "day_count": int(h.get("count", 0))})  # fmt: skip
        return now, str(int(now // 86400)), sorted(rows, key=lambda r: r["key"])

    async def aclose(self) -> None:
        await self.redis.aclose()
