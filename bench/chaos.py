"""Reliability suite: the real server under SIGKILL, Twilio faults and STOP races; prints what broke.

    python bench/chaos.py                      # SQLite (1 worker) and PostgreSQL (2 workers)
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

Aim: zero in every column but `in doubt`. Bounded in time, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


class Server:
    """`fanline run` as a subprocess that can be SIGKILLed and started again on the same port."""

    def __init__(self, env: dict[str, str], workers: int, log: Path):
        self.env, self.workers, self.log = env, workers, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "bot", "--project", str(ROOT), "run",
               "--workers", str(self.workers)]  # fmt: skip
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
            if r is not None and r.status_code == 200:
                self.phones.acked.add(sid)
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


async def drain(url: str, limit: float) -> None:
    """Faults are off: wait until the outbox is empty (bounded), polling the database."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _pending(url):
            return
        await asyncio.sleep(0.5)  # polling a database we do not own the events of, bounded


def _pending(url: str) -> int:
    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            q = sa.select(sa.func.count()).where(
                messages.c.direction == "out",
                messages.c.status.in_(("queued", "sending", "in_doubt")),
            )
            return int(conn.execute(q).scalar_one())
    finally:
        engine.dispose()


def audit(url: str, twilio: RecordingTwilio, phones: Phones) -> dict[str, int]:
    engine = sa.create_engine(normalise_url(url))
    with engine.connect() as conn:
        inbound = conn.execute(
            sa.select(messages.c.channel_id, messages.c.status).where(messages.c.direction == "in")
        ).all()
        out = conn.execute(
            sa.select(contacts.c.phone, messages.c.body, messages.c.status, messages.c.kind)
            .join(contacts, contacts.c.id == messages.c.contact_id)
            .where(messages.c.direction == "out", messages.c.private.is_(False))
        ).all()
    engine.dispose()
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
        "texts lost": len(phones.acked - stored),
        "unanswered": sum(1 for _, s in inbound if s == "received"),
        "replies lost": sum((twiml - phones.inline).values()),
        "duplicates": sum(max(0, n - held[key]) for key, n in got.items()),
        "sends after STOP": len(late),
        "rows stuck": sum(1 for *_, s, _ in out if s in ("queued", "sending", "in_doubt")),
        "in doubt": sum(1 for *_, s, _ in out if s == "unknown"),
    }


async def run_one(db_url: str, workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
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
        server = Server(env, workers, tmp / f"fanline-{workers}.log")
        server.start()
        await server.ready(url)
        phones = Phones()
        fans = Fans(url, phones, time.monotonic() + args.max_seconds)
        started = time.monotonic()
        try:
            twilio.set_faults(**FAULTS)
            done = asyncio.Event()
            kills = asyncio.create_task(killer(server, url, args.kills, args.kill_every, done))
            await stream(fans, args.fans, args.texts // args.fans, args.seed)
            done.set()
            await kills
            broadcast = asyncio.create_task(broadcast_with_stops(env, fans, args.fans, args.seed))
            await asyncio.sleep(args.fans / 20 * 0.3)  # a kill in the middle of the broadcast
            server.kill()
            server.start()
            await server.ready(url)
            await broadcast
            twilio.set_faults()  # faults off: let in-doubt lookups and retries settle
            await drain(db_url, 90.0)
        finally:
            await fans.aclose()
            server.stop()
        report = audit(db_url, twilio, phones)
        await twilio.aclose()
    report |= {"kills": server.kills, "texts": len(phones.acked), "redeliveries": phones.retries,
               "gave up": phones.gave_up, "seconds": round(time.monotonic() - started)}  # fmt: skip
    return report


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
    ap.add_argument("--short", action="store_true", help="CI size: 60 fans, 600 texts, 2 kills")
    args = ap.parse_args()
    if args.short:
        args.fans, args.texts, args.kills, args.kill_every = 60, 600, 2, 4.0
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.db in ("sqlite", "both"):
            url = f"sqlite:///{tmp}/chaos.db"
            runs.append(("SQLite, 1 worker", asyncio.run(run_one(url, 1, args, Path(tmp)))))
        if args.db in ("postgresql", "both"):
            with scratch_schema(args.pg_url, "chaos") as url:
                runs.append(("PostgreSQL, 2 workers",
                             asyncio.run(run_one(url, 2, args, Path(tmp)))))  # fmt: skip
    broken = False
    for name, report in runs:
        print(f"\n{name}:")
        for key, value in report.items():
            mark = ""
            if key in ("texts lost", "unanswered", "replies lost", "duplicates",
                       "sends after STOP", "rows stuck"):  # fmt: skip
                mark = "  ok" if value == 0 else "  BROKEN"
                broken |= value != 0
            print(f"  {key:<17} {value:>7}{mark}")
    raise SystemExit(1 if broken else 0)


if __name__ == "__main__":
    main()
