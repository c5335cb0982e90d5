"""Reliability suite: the real server under SIGKILL, Twilio faults and STOP races; prints what broke.

    python bench/chaos.py                      # SQLite (role all) and PostgreSQL (web + workers) at once
    python bench/chaos.py --db sqlite --short  # the short version CI runs

It runs `fanline run` as a subprocess on 127.0.0.1 against a Twilio-compatible server in this
process (429s, 500s, dropped connections, answers lost after Twilio accepted), streams signed
texts from many fans, kills the server with SIGKILL several times and restarts it, redelivers
every webhook that did not get a 200 (same MessageSid, as a Twilio retry would), and sends a
broadcast while half its fans text STOP. Then, with faults off, it lets the outbox drain and
audits the database against what the fans' phones (this process) received:

  texts lost         acknowledged with a 200 but not stored
  unanswered         stored but never processed (left `received`)
  replies lost       marked answered inline, but no TwiML answer carried them to the fan
  duplicates         a fan received the same reply more often than the outbox holds it
  sends after STOP   reached Twilio more than 0.5 s after the fan's STOP was acknowledged
  rows stuck         outbox rows still queued, sending or in doubt after the drain (a send
                     in doubt waits out the provider's late-accept window, then is settled)
  in doubt           sends whose outcome Twilio could not confirm (held, never re-sent)

On PostgreSQL the server is `--role web` (2 processes) beside two `--role worker` processes,
and the worker holding the singleton jobs' leases is SIGKILLed too, while texts stream and in
the middle of the broadcast, then started again:

  takeover s         the longest time from such a kill until other processes held every lease
                     the killed one held (aim: < 15 s; `lease_ttl_s` is 10 s)

Then the races (faults and kills off, every outcome decided by the order of events, never by
timing, so each column is zero whatever the machine's load):

  broadcasts failed  of broadcasts due at one moment, started by two schedulers of this
                     process besides the server's own (a lost start claim is never a failure)
  missed broadcast   fans subscribed before such a broadcast with no text of it queued
  re-subscribed      fans whose STOP raced their signup form's submit and who end subscribed
                     (whichever commits first, the fan must end unsubscribed)
  kept after erasure texts, numbers or profile left on a fan erased while texting
  burst out of order texts of one number's burst answered out of the order they were stored
  HTTP 500s          server errors answered during the races (a 503 asks for a retry: not one)
  late accepts       sends held by Twilio past the gateway's timeout, then accepted (a second
                     copy would show under duplicates)

Aim: zero in every column but `in doubt` and `late accepts`. Bounded in time, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import print_baseline  # noqa: E402
from bot.audience.broadcasts import BroadcastService, new_broadcast  # noqa: E402
from bot.audience.privacy import erase_fan  # noqa: E402
from bot.audience.segments import Segment  # noqa: E402
from bot.audience.signup import signup_link  # noqa: E402
from bot.errors import StorageError  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage.broadcast_tables import broadcasts  # noqa: E402
from bot.storage.db import normalise_url, scratch_schema  # noqa: E402
from bot.storage.tables import contacts, messages  # noqa: E402
from bot.testing import bind_local, serve_in_process, url_of  # noqa: E402
from bot.testing.twilio_server import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioServer  # noqa: E402

OUR_NUMBER = "+15005550006"
TEXTS = ["TOUR", "when is the presale?", "how much are tickets", "lol", "MERCH", "hi",
         "what's on the setlist", "VIP", "ok", "can I talk to a real person"]  # fmt: skip
FAULTS = {"rate_429": 0.05, "rate_500": 0.05, "rate_drop": 0.03, "rate_lost_answer": 0.03,
          "retry_after": 0.2}  # fmt: skip


class RecordingTwilio(TwilioServer):
    """The local Twilio, stamping when each message was accepted (for the STOP race)."""

    def _new_message(self, form: dict[str, list[str]]) -> dict[str, Any]:
        message = super()._new_message(form)
        message["_accepted_at"] = time.time()
        return message


@dataclass
class Phones:
    """What the fans' side saw: acknowledged texts, TwiML replies, when STOP was confirmed."""

    acked: set[str] = field(default_factory=set)
    inline: Counter[tuple[str, str]] = field(default_factory=Counter)
    stop_acked: dict[str, float] = field(default_factory=dict)
    retries: int = 0
    gave_up: int = 0
    server_errors: int = 0  # 500s (a 503 means "not stored, send again": Twilio retries it)
    sent_by: dict[str, str] = field(default_factory=dict)  # MessageSid -> the fan's number


class Server:
    """`fanline run` as a subprocess that can be SIGKILLed and started again on the same port."""

    def __init__(self, env: dict[str, str], workers: int, log: Path, role: str = "all"):
        self.env, self.workers, self.log, self.role = env, workers, log, role
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "bot", "--project", str(ROOT), "run",
               "--workers", str(self.workers), "--role", self.role]  # fmt: skip
        out = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    async def ready(self, url: str, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise SystemExit(f"fanline run exited:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)  # polling a starting server, bounded
        raise SystemExit(f"not ready after {limit:g}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class Fans:
    def __init__(self, url: str, phones: Phones, deadline: float):
        self.url, self.phones, self.deadline = url, phones, deadline
        self.signer = RequestValidator(TEST_AUTH_TOKEN)
        self.http = httpx.AsyncClient(base_url=url, timeout=10,
                                      limits=httpx.Limits(max_connections=48))  # fmt: skip

    async def text(self, number: str, body: str) -> None:
        """Deliver one text as Twilio would: retried with the same MessageSid until a 200."""
        sid = f"SM{uuid.uuid4().hex}"
        form = {"From": number, "To": OUR_NUMBER, "Body": body, "NumMedia": "0",
                "MessageSid": sid, "AccountSid": TEST_ACCOUNT_SID}  # fmt: skip
        path = "/webhooks/twilio/sms"
        headers = {"X-Twilio-Signature": self.signer.compute_signature(self.url + path, form)}
        delay = 0.2
        while time.monotonic() < self.deadline:
            try:
                r = await self.http.post(path, data=form, headers=headers)
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code == 500:
                self.phones.server_errors += 1
            if r is not None and r.status_code == 200:
                self.phones.acked.add(sid)
                self.phones.sent_by[sid] = number
                for reply in ET.fromstring(r.text).iter("Message"):
                    self.phones.inline[(number, "".join(reply.itertext()))] += 1
                if body.upper() == "STOP":
                    self.phones.stop_acked.setdefault(number, time.time())
                return
            self.phones.retries += 1
            await asyncio.sleep(delay)  # Twilio's retry back-off, not synchronisation
            delay = min(delay * 2, 3.0)
        self.phones.gave_up += 1

    async def aclose(self) -> None:
        await self.http.aclose()


def fan_number(i: int) -> str:
    return f"+1555{i:07d}"


async def stream(fans: Fans, count: int, per_fan: int, seed: int) -> None:
    rnd = random.Random(seed)

    async def one(i: int) -> None:
        number = fan_number(i)
        await fans.text(number, "hi")
        await fans.text(number, "YES")
        for _ in range(per_fan):
            await fans.text(number, rnd.choice(TEXTS))

    await asyncio.gather(*(one(i) for i in range(count)))


async def killer(server: Server, url: str, kills: int, every_s: float, done: asyncio.Event) -> None:
    for _ in range(kills):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every_s)
        if done.is_set():
            return
        server.kill()
        server.start()
        await server.ready(url)


async def kill_lease_holder(workers: list[Server], db_url: str, urls: list[str]) -> float | None:
    """SIGKILL the worker process holding the broadcast scheduler's lease, start it again, and
    return how long until other processes held every lease it held (the takeover time)."""
    held = await asyncio.to_thread(_leases, db_url)
    pid = held.get("broadcasts", ("",))[0].split(":")[1:2]
    victim = next((w for w in workers if w.proc is not None and [str(w.proc.pid)] == pid), None)
    if victim is None:  # nobody holds it right now (a takeover under way): nothing to measure
        return None
    mine = {name for name, (holder, *_) in held.items() if holder.split(":")[1] == pid[0]}
    killed_at = time.monotonic()
    victim.kill()
    victim.start()  # the restarted process stands by (or takes a lease back once it lapsed)
    deadline = killed_at + 120.0  # a bound on the wait, not the aim (< 15 s)
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(_leases, db_url)
        if all(now[n][0].split(":")[1] != pid[0] and now[n][2] > 0 for n in mine if n in now):
            took = time.monotonic() - killed_at
            await victim.ready(urls[workers.index(victim)])
            return took
        await asyncio.sleep(0.1)  # polling the leases of other processes, bounded
    raise SystemExit(f"no takeover of {sorted(mine)} within 120 s")


def _leases(url: str) -> dict[str, tuple[str, float, float]]:
    from bot.leases import holders
    from bot.storage.db import Database

    db = Database(url)
    try:
        return db.run_sync(holders)
    finally:
        db.close()


async def worker_killer(
    workers: list[Server], db_url: str, urls: list[str], kills: int, every_s: float,
    done: asyncio.Event, takeovers: list[float],
) -> None:  # fmt: skip
    for _ in range(kills):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every_s)
        if done.is_set():
            return
        took = await kill_lease_holder(workers, db_url, urls)
        if took is not None:
            takeovers.append(took)


def cli(env: dict[str, str], *args: str) -> str:
    cmd = [sys.executable, "-m", "bot", "--project", str(ROOT), "-q", *args]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"fanline {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout


async def broadcast_with_stops(env: dict[str, str], fans: Fans, count: int, seed: int) -> str:
    """A broadcast to every subscribed fan; half of them text STOP while it sends."""
    text = f"Chaos broadcast {uuid.uuid4().hex[:6]}: presale Tuesday!"
    out = cli(env, "broadcast", "create", "chaos", "--text", text, "--segment", "everyone",
              "--rate", "20", "--quiet-hours", "00:00-23:59")  # fmt: skip
    broadcast_id = next(int(w) for w in out.replace("#", " ").split() if w.isdigit())
    await asyncio.to_thread(cli, env, "broadcast", "send", str(broadcast_id), "--no-wait")
    rnd = random.Random(seed)
    stoppers = rnd.sample(range(count), count // 2)

    async def stop(i: int) -> None:
        await asyncio.sleep(rnd.uniform(0, count / 20 * 0.8))  # spread over the send
        await fans.text(fan_number(i), "STOP")

    await asyncio.gather(*(stop(i) for i in stoppers))
    return text


RACE_FANS = 1_000_000  # race numbers start here, apart from the streamed fans'
RACE_TEXTS = [t for t in TEXTS if "person" not in t]  # a hand-off would quiet the replies


@dataclass
class Races:
    """What the races left to audit once everything has settled."""

    broadcasts: list[int] = field(default_factory=list)
    signups: list[str] = field(default_factory=list)
    erased: list[int] = field(default_factory=list)
    erased_numbers: list[str] = field(default_factory=list)
    burst: str = ""
    late: int = 0
    errors_before: int = 0


async def race_schedulers(stores: list[Store], count: int) -> list[int]:
    """`count` broadcasts due at one moment, started by two schedulers here and the server's."""
    services = [BroadcastService(s) for s in stores]
    ids = []
    for i in range(count):
        spec = new_broadcast(f"race {i}", f"Race broadcast {i}: doors at 8!", Segment("all"),
                             default_rate=100, quiet_start="00:00", quiet_end="00:00")  # fmt: skip
        bid = await services[0].create(spec)
        await services[0].schedule(bid, datetime.now(UTC) + timedelta(hours=1))
        ids.append(bid)
    due = datetime.now(UTC) - timedelta(seconds=1)  # all due at one moment
    await stores[0].db.run(
        lambda c: c.execute(broadcasts.update().where(broadcasts.c.id.in_(ids)).values(send_at=due))
    )
    await asyncio.gather(*(s.run_due() for s in services))
    return ids


async def late_accept(twilio: RecordingTwilio, timeout_s: float) -> int:
    """Twilio's creates (held since before the race broadcasts started) wait past the gateway's
    timeout, then every one is accepted (Twilio keeps a request it has received): the sender
    must not send those texts a second time."""
    try:
        await twilio.wait_held(1, timeout=120)
        await asyncio.sleep(timeout_s + 2)  # the scenario: past the gateway's timeout
        held = twilio.held
    finally:
        twilio.release()
    return held


async def race_stop_signup(fans: Fans, store: Store, settings: Any, count: int) -> list[str]:
    """Each fan's signup form is submitted while the fan texts STOP, at one moment."""
    numbers = [fan_number(RACE_FANS + i) for i in range(count)]
    await asyncio.gather(*(fans.text(n, "hi") for n in numbers))  # pending, sent the link
    async with httpx.AsyncClient(timeout=60) as http:

        async def one(number: str) -> None:
            cid = await store.db.run(
                lambda c: c.execute(
                    sa.select(contacts.c.id).where(contacts.c.phone == number)
                ).scalar_one()
            )
            link = signup_link(cid, settings)
            page = await http.get(link)
            nonce = page.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
            form = {**SIGNUP_FORM, "nonce": nonce}
            submit = http.post(link, data=form)
            answer, _ = await asyncio.gather(submit, fans.text(number, "STOP"))
            if answer.status_code == 500:
                fans.phones.server_errors += 1

        await asyncio.gather(*(one(n) for n in numbers))
    return numbers


SIGNUP_FORM = {"first_name": "Ana", "birthday": "2001-03-14", "country": "US", "zip": "94105",
               "email": "ana@example.com", "age_ok": "yes", "consent": "yes"}  # fmt: skip


async def race_erasure(
    fans: Fans, store: Store, count: int, seed: int
) -> tuple[list[int], list[str]]:
    """Each fan is erased while several of their texts are in flight."""
    rnd = random.Random(seed)
    numbers = [fan_number(RACE_FANS + 1000 + i) for i in range(count)]
    for n in numbers:
        await fans.text(n, "hi")
        await fans.text(n, "YES")
    ids = await store.db.run(
        lambda c: list(
            c.execute(sa.select(contacts.c.id).where(contacts.c.phone.in_(numbers))).scalars()
        )
    )

    async def one(number: str) -> None:
        texts = [fans.text(number, rnd.choice(RACE_TEXTS) + " my email is a@b.example")
                 for _ in range(6)]  # fmt: skip
        await asyncio.gather(*texts[:3], erase(number), *texts[3:])

    async def erase(number: str) -> None:
        with contextlib.suppress(StorageError):  # committed; only emptying the log waited
            await erase_fan(store, number)

    await asyncio.gather(*(one(n) for n in numbers))
    return ids, numbers


async def race_burst(fans: Fans, count: int, seed: int) -> str:
    """One number posts `count` texts at once."""
    rnd = random.Random(seed)
    number = fan_number(RACE_FANS + 2000)
    await fans.text(number, "hi")
    await fans.text(number, "YES")
    await asyncio.gather(
        *(fans.text(number, f"{rnd.choice(RACE_TEXTS)} {i}") for i in range(count))
    )
    return number


def race_audit(url: str, races: Races, phones: Phones) -> dict[str, int]:
    engine = sa.create_engine(normalise_url(url))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(broadcasts.c.id, broadcasts.c.status, broadcasts.c.created_at)
            .where(broadcasts.c.id.in_(races.broadcasts))
        ).all()  # fmt: skip
        missed = 0
        for row in rows:
            got = sa.select(messages.c.contact_id).where(messages.c.broadcast_id == row.id)
            missed += conn.execute(
                sa.select(sa.func.count()).select_from(contacts).where(
                    contacts.c.subscription == "subscribed",
                    contacts.c.subscribed_at < row.created_at,
                    contacts.c.id.not_in(got),
                )
            ).scalar_one()  # fmt: skip
        resubscribed = conn.execute(
            sa.select(sa.func.count()).select_from(contacts).where(
                contacts.c.phone.in_(races.signups), contacts.c.subscription == "subscribed"
            )
        ).scalar_one()  # fmt: skip
        m = messages.c
        kept = conn.execute(
            sa.select(sa.func.count()).select_from(messages).where(
                m.contact_id.in_(races.erased),
                sa.or_(m.body != "", sa.and_(m.direction == "in", m.from_number.is_not(None)),
                       sa.and_(m.direction == "out", m.to_number.is_not(None))),
            )
        ).scalar_one() + conn.execute(
            sa.select(sa.func.count()).select_from(contacts).where(
                contacts.c.id.in_(races.erased), contacts.c.phone.is_not(None)
            )
        ).scalar_one()  # fmt: skip
        reply = messages.alias("reply")
        burst = conn.execute(
            sa.select(m.id, sa.func.min(reply.c.id))
            .select_from(messages.join(reply, reply.c.reply_to == m.id))
            .join(contacts, contacts.c.id == m.contact_id)
            .where(contacts.c.phone == races.burst, m.direction == "in")
            .group_by(m.id)
            .order_by(m.id)
        ).all()
    engine.dispose()
    firsts = [first for _, first in burst]
    return {
        "broadcasts failed": sum(1 for r in rows if r.status == "failed"),
        "missed broadcast": missed,
        "re-subscribed": resubscribed,
        "kept after erasure": kept,
        "burst out of order": sum(1 for a, b in itertools.pairwise(firsts) if b < a),
        "HTTP 500s": phones.server_errors - races.errors_before,
        "late accepts": races.late,
    }


async def run_races(
    db_url: str,
    env: dict[str, str],
    fans: Fans,
    twilio: RecordingTwilio,
    args: argparse.Namespace,
    name: str = "",
) -> Races:
    settings = load_settings(ROOT, env=env)
    stores = [await asyncio.to_thread(Store.open, db_url, hash_key=settings.secret_key,
                                      migrate=False) for _ in range(2)]  # fmt: skip
    races = Races(errors_before=fans.phones.server_errors)
    try:
        twilio.set_faults(accept_abandoned=True)
        twilio.hold()  # before the broadcasts start: their sends wait at Twilio's gate
        races.broadcasts = await race_schedulers(stores, 3)
        races.late = await late_accept(twilio, GATEWAY_TIMEOUT_S)
        twilio.set_faults()
        stamp(f"{name}: schedulers and late accepts raced")
        races.signups = await race_stop_signup(fans, stores[0], settings, args.race_fans)
        stamp(f"{name}: STOP and signup raced")
        races.erased, races.erased_numbers = await race_erasure(
            fans, stores[0], max(2, args.race_fans // 3), args.seed
        )
        stamp(f"{name}: erasures raced")
        races.burst = await race_burst(fans, args.burst, args.seed)
        stamp(f"{name}: burst answered")
    finally:
        for store in stores:
            store.close()
    return races


STARTED = time.monotonic()


def stamp(what: str) -> None:
    """Where a run's time goes, on stderr (the table on stdout is what CI reads)."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {what}", file=sys.stderr, flush=True)


GATEWAY_TIMEOUT_S = 10.0  # bot.channels.twilio_gateway's default request timeout


async def drain(url: str, limit: float) -> None:
    """Faults are off: wait until the outbox is empty and every text answered (bounded; a
    burst's drain may still be answering), polling the database."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _pending(url):
            return
        await asyncio.sleep(0.5)  # polling a database we do not own the events of, bounded


def _pending(url: str) -> int:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            # a timed flow's text held for the fan's waking hours is not the drain's to wait for
            waiting = sa.and_(
                messages.c.kind == "timed",
                messages.c.status == "queued",
                messages.c.not_before > datetime.now(UTC),
            )
            q = sa.select(sa.func.count()).where(
                sa.or_(
                    sa.and_(messages.c.direction == "out",
                            messages.c.status.in_(("queued", "sending", "in_doubt")), ~waiting),
                    sa.and_(messages.c.direction == "in", messages.c.status == "received"),
                )
            )  # fmt: skip
            return int(conn.execute(q).scalar_one())
    finally:
        engine.dispose()


def audit(
    url: str, twilio: RecordingTwilio, phones: Phones, erased: frozenset[str] = frozenset()
) -> dict[str, int]:
    """The columns above; the numbers of fans erased on purpose are `kept after erasure`'s
    (their stored texts and replies are meant to be gone, so they cannot be matched here)."""
    engine = sa.create_engine(normalise_url(url))
    with engine.connect() as conn:
        inbound = conn.execute(
            sa.select(messages.c.channel_id, messages.c.status)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(messages.c.direction == "in", contacts.c.erased_at.is_(None))
        ).all()
        out = conn.execute(
            sa.select(contacts.c.phone, messages.c.body, messages.c.status, messages.c.kind)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(messages.c.direction == "out", messages.c.private.is_(False),
                   contacts.c.erased_at.is_(None))
        ).all()  # fmt: skip
        # a timed flow's text held for the fan's waking hours is waiting, not stuck
        waiting = conn.execute(
            sa.select(sa.func.count())
            .select_from(messages.join(contacts, contacts.c.id == messages.c.contact_id))
            .where(messages.c.kind == "timed", messages.c.status == "queued",
                   messages.c.not_before > datetime.now(UTC), contacts.c.erased_at.is_(None))
        ).scalar_one()  # fmt: skip
    engine.dispose()
    out = [row for row in out if row[0] not in erased]
    for key in [k for k in phones.inline if k[0] in erased]:
        del phones.inline[key]
    for key in [k for k in twilio.messages if twilio.messages[k]["to"] in erased]:
        del twilio.messages[key]
    acked = {sid for sid in phones.acked if phones.sent_by.get(sid) not in erased}
    stored = {sid for sid, _ in inbound}
    held = Counter((p, b) for p, b, s, _ in out if s not in ("queued", "cancelled", "failed"))
    twiml = Counter((p, b) for p, b, s, _ in out if s == "twiml")
    compliance = {(p, b) for p, b, _, k in out if k == "compliance"}
    accepted = Counter((m["to"], m["body"]) for m in twilio.messages.values())
    got = accepted + phones.inline
    late = [m for m in twilio.messages.values()
            if m["to"] in phones.stop_acked and (m["to"], m["body"]) not in compliance
            and m["_accepted_at"] > phones.stop_acked[m["to"]] + 0.5]  # fmt: skip
    return {
        "texts lost": len(acked - stored),
        "unanswered": sum(1 for _, s in inbound if s == "received"),
        "replies lost": sum((twiml - phones.inline).values()),
        "duplicates": sum(max(0, n - held[key]) for key, n in got.items()),
        "sends after STOP": len(late),
        "rows stuck": sum(1 for *_, s, _ in out if s in ("queued", "sending", "in_doubt"))
        - waiting,
        "in doubt": sum(1 for *_, s, _ in out if s == "unknown"),
    }


async def run_one(
    db_url: str, workers: int, args: argparse.Namespace, tmp: Path, roles: int = 0, name: str = ""
) -> dict[str, Any]:
    """One run; with `roles`, the server is `--role web` and `roles` `--role worker` processes
    send and run the singleton jobs, the one holding them SIGKILLed while texts stream and
    in the middle of the broadcast (`takeover s`: the longest wait until others held them)."""
    twilio = RecordingTwilio(seed=args.seed)
    async with serve_in_process(twilio.app) as twilio_url:
        sock = bind_local()
        url = url_of(sock)
        sock.close()  # the subprocess binds this port; a restart binds it again
        env = os.environ | {
            "FANLINE_DATABASE_URL": db_url, "FANLINE_PORT": url.rsplit(":", 1)[1],
            "FANLINE_HOST": "127.0.0.1", "FANLINE_PUBLIC_URL": url,
            "FANLINE_SECRET_KEY": "bench-chaos", "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN, "TWILIO_NUMBER": OUR_NUMBER,
            "TWILIO_API_BASE_URL": twilio_url, "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        if roles:  # a multi-process deployment: migrations are their own step
            cli(env, "db", "upgrade")
            env["FANLINE_MIGRATE_ON_START"] = "false"
        server = Server(env, workers, tmp / f"fanline-{workers}-{roles}.log",
                        "web" if roles else "all")  # fmt: skip
        server.start()
        bg, bg_urls = [], []
        for i in range(roles):  # worker processes: their own port, for /readyz
            port = bind_local()
            bg_urls.append(url_of(port))
            port.close()
            bg.append(Server(env | {"FANLINE_PORT": bg_urls[-1].rsplit(":", 1)[1]}, 1,
                             tmp / f"worker-{i}.log", "worker"))  # fmt: skip
            bg[-1].start()
        try:
            await server.ready(url)
            for w, w_url in zip(bg, bg_urls, strict=True):
                await w.ready(w_url)
        except BaseException:  # one that never became ready: none of them is left running
            for proc in (server, *bg):
                proc.stop()
            raise
        takeovers: list[float] = []
        phones = Phones()
        fans = Fans(url, phones, time.monotonic() + args.max_seconds)
        started = time.monotonic()
        stamp(f"{name}: servers ready")
        try:
            twilio.set_faults(**FAULTS)
            done = asyncio.Event()
            kills = asyncio.create_task(killer(server, url, args.kills, args.kill_every, done))
            worker_kills = asyncio.create_task(worker_killer(
                bg, db_url, bg_urls, args.kills, args.kill_every * 1.5, done, takeovers))  # fmt: skip
            await stream(fans, args.fans, args.texts // args.fans, args.seed)
            done.set()
            await kills
            await worker_kills
            stamp(f"{name}: texts streamed")
            broadcast = asyncio.create_task(broadcast_with_stops(env, fans, args.fans, args.seed))
            await asyncio.sleep(args.fans / 20 * 0.3)  # a kill in the middle of the broadcast
            server.kill()
            server.start()
            if bg:  # and of the worker sending it: another takes the scheduler over
                took = await kill_lease_holder(bg, db_url, bg_urls)
                if took is not None:
                    takeovers.append(took)
            await server.ready(url)
            await broadcast
            stamp(f"{name}: broadcast sent")
            twilio.set_faults()  # faults off: let in-doubt lookups and retries settle
            races = await run_races(db_url, env, fans, twilio, args, name)
            # a send in doubt settles after the late-accept window (the timeout + 60 s)
            await drain(db_url, 240.0)
            stamp(f"{name}: drained ({_pending(db_url)} rows pending)")
        finally:
            await fans.aclose()
            server.stop()
            for w in bg:
                w.stop()
        erased = frozenset(races.erased_numbers)
        report = audit(db_url, twilio, phones, erased) | race_audit(db_url, races, phones)
        await twilio.aclose()
    if roles:
        report |= {"worker kills": sum(w.kills for w in bg), "takeovers": len(takeovers),
                   "takeover s": round(max(takeovers, default=0.0), 1)}  # fmt: skip
    report |= {"kills": server.kills, "texts": len(phones.acked), "redeliveries": phones.retries,
               "gave up": phones.gave_up, "seconds": round(time.monotonic() - started)}  # fmt: skip
    return report


def both_at_once() -> int:
    """The SQLite and the PostgreSQL run as two processes at the same time (they share no port,
    file or schema: each has its own Twilio, server ports, temp folder and database); their
    tables in that order; non-zero if either found anything broken."""
    children = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--db", db],
                                 stdout=subprocess.PIPE, text=True)
                for db in ("sqlite", "postgresql")]  # fmt: skip
    outs = [child.communicate()[0] for child in children]  # a table is a few hundred bytes
    for out in outs:
        print(out, end="", flush=True)
    return max(child.returncode for child in children)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg-url", default=os.environ.get(
        "FANLINE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    ap.add_argument("--fans", type=int, default=200)
    ap.add_argument("--texts", type=int, default=3000, help="streamed texts (besides opt-in/STOP)")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--kill-every", type=float, default=8.0, help="seconds between kills")
    ap.add_argument("--max-seconds", type=float, default=420.0, help="bound of one run")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--race-fans", type=int, default=30, help="fans in the STOP/signup race")
    ap.add_argument("--burst", type=int, default=300, help="texts in one number's burst")
    ap.add_argument(
        "--short",
        action="store_true",
        help="CI size: 60 fans, 600 texts, 2 kills, 12 racing fans, a burst of 100",
    )
    args = ap.parse_args()
    if args.db == "both":
        raise SystemExit(both_at_once())
    print_baseline()
    if args.short:
        args.fans, args.texts, args.kills, args.kill_every = 60, 600, 2, 4.0
        args.race_fans, args.burst = 12, 100
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "sqlite":
            url = f"sqlite:///{tmp}/chaos.db"
            runs.append(("SQLite, 1 worker",
                         asyncio.run(run_one(url, 1, args, Path(tmp), name="SQLite"))))  # fmt: skip
        else:
            with scratch_schema(args.pg_url, "chaos") as url:
                # roles: a web server of 2 processes, 2 worker processes holding the singletons
                runs.append(("PostgreSQL, --role web (2 workers) + 2 x --role worker",
                             asyncio.run(run_one(url, 2, args, Path(tmp), roles=2,
                                                 name="PostgreSQL"))))  # fmt: skip
    broken = False
    for name, report in runs:
        print(f"\n{name}:")
        for key, value in report.items():
            mark = ""
            if key in ("texts lost", "unanswered", "replies lost", "duplicates",
                       "sends after STOP", "rows stuck", "broadcasts failed", "missed broadcast",
                       "re-subscribed", "kept after erasure", "burst out of order",
                       "HTTP 500s"):  # fmt: skip
                mark = "  ok" if value == 0 else "  BROKEN"
                broken |= value != 0
            if key == "takeover s" and report.get("worker kills"):
                mark = "  ok" if 0 < value < 15 else "  SLOW"  # the aim: < 15 s
                broken |= not value < 15
            print(f"  {key:<18} {value:>7}{mark}")
    raise SystemExit(1 if broken else 0)


if __name__ == "__main__":
    main()
