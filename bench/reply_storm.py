"""Benchmark: a reply storm. One broadcast, thousands of replies, a bot, topics and two agents' worth of work.

    python bench/reply_storm.py [--fans 20000] [--database-url URL] [--seed N]
                                [--reply-share 0.15] [--pipeline accurate|default] [--mix FILE]

1. N subscribed fans are seeded in bulk; the broadcast (the --mix file's text; by default
   bench/data/reply_storm.yml, a dev set) goes to all of them through the production enqueue (its outbox rows then count as sent).
2. A share of the fans reply, each with one text drawn from the mix (known FAQs, small talk,
   opt-outs, and topics the demo cannot answer). Every text runs through the real pipeline and
   store of a real app (`create_app`, SQLite in a temp file or PostgreSQL with a URL), in the
   order of its simulated arrival.
3. The topic sweep groups the texts that reached a person, the answer sweep the ones the bot
   answered itself ("Bot answers"); a scripted agent works the inbox API over HTTP on 127.0.0.1
   (logged in with a CSRF token like the browser), what reaches most fans first: every POST
   (reply to a topic, move texts, merge, teach; correct a group of bot answers, move its wrong
   ones out, teach from it) is one action, at most 30.
4. After teaching (content files written, retrained, hot-reloaded), a second wave from the
   topics' held-out phrasings: what the bot now answers by itself.
5. Grouping 10,000 waiting texts, from stored vectors and with encoding.

Simulated time: the broadcast and every agent reply leave through the outbox at the configured
rate per number (`send_rate_per_second`), in the order they were queued; bot replies are
answered inline (TwiML). Agent actions take --action-seconds each, from --agent-start after
the broadcast began. The judge: bench/storm_mix.py (the mix's labels) and
bench/conversation_judge.py. Prints every figure beside the issue's aim.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import math
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402  (bulk seeding and reading the outcome, as bench/broadcast.py)

from bench import conversation_judge as cj  # noqa: E402
from bench import storm_mix as sm  # noqa: E402
from bench.baseline import print_baseline  # noqa: E402
from bot.audience.broadcasts import BroadcastService, new_broadcast  # noqa: E402
from bot.audience.segments import Segment  # noqa: E402
from bot.messages import InboundSms  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.storage import Store  # noqa: E402
from bot.storage.tables import consent_events, contacts, conversations, messages  # noqa: E402

US = "+15005550006"
NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lu"]
ZIPS = ["80202", "80203", "80205", "80206", "80210", "80211", "80218", "80302", "80401", "80012"]
# issue 15's aims
AIMS = {"actions": ("<=", 30), "right": (">=", 90.0), "purity": (">=", 90.0),
        "taught_automated": (">=", 85.0), "taught_wrong": ("<=", 3.0),
        "group_s": ("<", 10.0)}  # fmt: skip
CONTENT = ("data", "flows", "domain", "domain.yml", "config.yml")  # teach edits these: copied


@dataclass
class Fan:
    index: int
    contact_id: int
    phone: str
    received_s: float  # when the broadcast reached the fan (simulated)


@dataclass
class Text:
    fan: Fan
    phrase: sm.Phrase
    at_s: float  # simulated arrival
    wave: int
    message_id: int | None = None
    obs: cj.Observed | None = None
    verdict: sm.BotVerdict | None = None
    answered_by: str | None = None  # bot | agent | auto | correction: the first right answer
    answered_s: float = math.inf  # when it left (simulated)


@dataclass
class Run:
    """Everything one run measured, for the report."""

    fans: int
    rate: float
    texts: list[Text] = field(default_factory=list)
    wave2: list[Text] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    actions: list[Any] = field(default_factory=list)
    taught: set[str] = field(default_factory=set)
    topics_all: int = 0
    topics_3plus: int = 0
    topic_texts: int = 0
    purity: float = 0.0
    purity_after: float = 0.0
    right: int = 0
    right_by_agent: int = 0
    right_by_auto: int = 0
    right_by_correction: int = 0
    within_hour: int = 0
    last_agent_send_s: float = 0.0
    not_right: Counter[str] = field(default_factory=Counter)
    grouping: dict[str, Any] = field(default_factory=dict)


# ---- setting up -------------------------------------------------------------------------------


def project_copy(tmp: Path) -> Path:
    """The demo fan line in `tmp`: content files copied (teaching edits them), the rest linked."""
    project = tmp / "project"
    project.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in (".fanline", ".git", ".venv", "models"):
            continue
        if entry.name in CONTENT:
            copy = shutil.copytree if entry.is_dir() else shutil.copy2
            copy(entry, project / entry.name)
        else:
            (project / entry.name).symlink_to(entry)
    if (ROOT / "models").is_dir():  # the demo's trained model, if current: no training here
        shutil.copytree(ROOT / "models", project / "models")
    return project


def seed_fans(store: Store, n: int, rate: float, batch: int = 20_000) -> list[Fan]:
    """N subscribed fans with their conversations and opt-in ledger rows, in bulk."""
    rng = random.Random(7)
    at = datetime.now(UTC)
    phones = [f"+1303{2_000_000 + i:07d}" for i in range(n)]
    for start in range(0, n, batch):
        chunk = phones[start : start + batch]
        rows = [{"phone": p, "phone_hash": store.phone_hash(p), "subscription": "subscribed",
                 "profile": {"first_name": rng.choice(NAMES), "zip": rng.choice(ZIPS)},
                 "subscribed_at": at, "created_at": at} for p in chunk]  # fmt: skip
        store.db.run_sync(lambda c, r=rows: c.execute(contacts.insert(), r))
    ids = dict(
        store.db.run_sync(lambda c: c.execute(sa.select(contacts.c.phone, contacts.c.id)).all())
    )
    for start in range(0, n, batch):
        chunk = [ids[p] for p in phones[start : start + batch]]
        convs = [
            {"contact_id": i, "status": "bot", "dialogue": {}, "updated_at": at} for i in chunk
        ]
        ledger = [{"contact_id": i, "action": "opt_in", "method": "web_form", "at": at,
                   "text_shown": "bench"} for i in chunk]  # fmt: skip
        store.db.run_sync(lambda c, a=convs, b=ledger: (c.execute(conversations.insert(), a),
                                                        c.execute(consent_events.insert(), b)))  # fmt: skip
    # the broadcast reaches fans in contact order at the outbox's rate
    return [Fan(i, ids[p], p, i / rate) for i, p in enumerate(phones)]


async def send_broadcast(store: Store, body: str, rate: float) -> int:
    """The broadcast through the production enqueue; its texts then count as sent (the storm
    starts as they land). Returns the broadcast id."""
    service = BroadcastService(store, default_rate=rate)
    bid = await service.create(new_broadcast("denver-weather", body, Segment("everyone"),
                                             default_rate=rate))  # fmt: skip
    await service.send(bid)
    await service.enqueue(bid)
    at = datetime.now(UTC)
    await store.db.run(
        lambda c: c.execute(
            messages.update()
            .where(messages.c.broadcast_id == bid, messages.c.kind == "broadcast")
            .values(status="sent", sent_at=at, not_before=None)
        )
    )
    return bid


def plan_wave1(mix: sm.Mix, fans: list[Fan], share: float, rng: random.Random) -> list[Text]:
    """Who replies, with what, and when: a reply `delay` after the broadcast reached the fan
    (log-normal, median two minutes: most reply at once, a long tail much later)."""
    repliers = rng.sample(fans, max(1, round(len(fans) * share)))
    phrases = sm.draw(mix, rng, len(repliers), wave=1)
    texts = [Text(f, p, f.received_s + rng.lognormvariate(math.log(120), 1.0), 1)
             for f, p in zip(repliers, phrases, strict=True)]  # fmt: skip
    return sorted(texts, key=lambda t: t.at_s)


# ---- the storm through the pipeline -----------------------------------------------------------


def observe(outcome: Any) -> cj.Observed:
    """The turn as the judge sees it, from the outcome alone (no extra database trips)."""
    events = outcome.events
    pred = outcome.prediction
    kinds = [d.get("kind") for t, d in events if t == "compliance"]
    escalated = any(t == "escalated" or t.startswith("escalation_") for t, _ in events)
    return cj.Observed(
        replies=tuple(q.reply.body for q in outcome.replies),
        responses=tuple(d.get("response") or "" for t, d in events if t == "utter"),
        flows=tuple(d.get("flow", "") for t, d in events if t == "flow_started"),
        escalated=escalated, held=outcome.held, compliance=kinds[0] if kinds else None,
        intent=pred.intent if pred else None, confidence=float(pred.confidence) if pred else 0.0,
        subscription="unsubscribed" if "opt_out" in kinds else "subscribed", was="subscribed",
        status="open" if escalated or outcome.held else "bot",
    )  # fmt: skip


async def run_texts(
    runtime: Any, texts: list[Text], answers: dict[str, str], *, concurrency: int = 16,
    progress: Progress | None = None,
) -> None:  # fmt: skip
    """Each text through the app's own pipeline (its commit hooks wake the sweep), a few at once."""
    sem = asyncio.Semaphore(concurrency)
    budget = runtime.settings.reply_budget_s

    async def one(t: Text) -> None:
        async with sem:
            msg = InboundSms(f"SM{uuid.uuid4().hex}", t.fan.phone, US, t.phrase.text)
            outcome = await bounded(runtime.handle(msg, inline_s=budget), "a turn")
        t.message_id, t.obs = outcome.message_id, observe(outcome)
        t.verdict = sm.judge(t.phrase, t.obs, answers)
        if progress:
            progress.tick()

    await asyncio.gather(*(one(t) for t in texts))


async def bounded(aw: Any, what: str, timeout_s: float = 300) -> Any:
    """Await with a bound: a stalled benchmark says where it stalled (every task's stack)."""
    try:
        return await asyncio.wait_for(aw, timeout_s)
    except TimeoutError:
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=sys.stderr)
        raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s") from None


class Progress:
    def __init__(self, what: str, total: int, every_s: float = 5.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.done, self.started, self.last = 0, time.perf_counter(), time.perf_counter()

    def tick(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            print(f"  {self.what}: {self.done:,}/{self.total:,} ({rate:,.0f}/s)", flush=True)


# ---- simulated time ---------------------------------------------------------------------------


def outbox_times(rows: list[tuple[int, float]], rate: float) -> dict[int, float]:
    """When each outbox row leaves: (row id, due at) -> sent at, one number sending `rate` per
    second, the lowest id first among the rows due (as the sender's claim orders them)."""
    pending = sorted(rows, key=lambda r: r[1])
    due: list[int] = []
    sent: dict[int, float] = {}
    at, i = 0.0, 0
    while i < len(pending) or due:
        if not due:
            at = max(at, pending[i][1])
        while i < len(pending) and pending[i][1] <= at:
            heapq.heappush(due, pending[i][0])
            i += 1
        sent[heapq.heappop(due)] = at
        at += 1.0 / rate
    return sent


# ---- figures ----------------------------------------------------------------------------------


def pct(n: float, d: float) -> str:
    return f"{100.0 * n / d:.1f} %" if d else "-"


def aim(key: str) -> str:
    op, target = AIMS[key]
    unit = (
        " %"
        if isinstance(target, float) and key != "group_s"
        else (" s" if key == "group_s" else "")
    )
    return f"   (aim {op} {target:g}{unit})"


def line(label: str, value: str, key: str | None = None) -> None:
    print(f"{label:<58}{value:>22}{aim(key) if key else ''}")


def report_wave1(run: Run) -> None:
    texts = run.texts
    kinds = Counter(t.phrase.kind for t in texts)
    print(f"\nreply storm: {run.fans:,} fans, outbox {run.rate:g} texts/s per number")
    line("fans who replied", f"{len(texts):,}")
    for kind in sm.KINDS:
        line(f"  {kind}", f"{kinds[kind]:,}")
    bot = [t for t in texts if t.phrase.kind != "opt_out"]
    right = sum(t.verdict.right for t in bot)
    wrong = sum(t.verdict.wrong for t in bot)
    line("answered by the bot: right / wrong", f"{right:,} / {wrong:,}")
    line("  right, of the texts it could answer (known + small talk)",
         pct(sum(t.verdict.right for t in bot if t.phrase.kind != "topics"),
             sum(t.phrase.kind != "topics" for t in bot)))  # fmt: skip
    line("handed to a person (escalated)", f"{sum(t.verdict.with_person for t in texts):,}")
    outs = [t for t in texts if t.phrase.kind == "opt_out"]
    line("opt-outs honoured", f"{sum(t.verdict.right for t in outs):,} / {len(outs):,}")


def report_categories(run: Run) -> None:
    """Per true category: what the bot did, and who answered right in the end."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    for t in run.texts:
        name = "known FAQs" if t.phrase.kind == "known" else t.phrase.category
        row, v = rows[name], t.verdict
        for k, hit in enumerate([True, v.right, v.wrong, v.with_person,
                                 t.answered_by is not None, t.answered_s - t.at_s <= 3600]):  # fmt: skip
            row[k] += hit
    print(f"  {'category':<16}{'fans':>7}{'bot right':>11}{'bot wrong':>11}{'to person':>11}"
          f"{'right':>8}{'<1 h':>8}")  # fmt: skip
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        print(
            f"  {name:<16}"
            + "".join(f"{x:>{w}}" for x, w in zip(r, (7, 11, 11, 11, 8, 8), strict=True))
        )


def report_topics(run: Run) -> None:
    line("topics formed (3+ texts / all)", f"{run.topics_3plus:,} / {run.topics_all:,}")
    line("  texts in topics", f"{run.topic_texts:,}")
    line("  purity (majority category's share, by size)", f"{run.purity:.1f} %", "purity")
    line("  purity after the agent's moves and merges", f"{run.purity_after:.1f} %")


def report_agent(run: Run) -> None:
    kinds = Counter(a.kind for a in run.actions)
    refused = sum("error" in a.result for a in run.actions)
    line("agent actions (refused by the inbox)", f"{len(run.actions)} ({refused})", "actions")
    line("  " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), "")
    for a in run.actions:
        fans = a.result.get("fans")
        print(f"    {a.at_s / 60:5.1f} min  {a.kind:<6} topic {a.topic_id:<5} {a.category:<14}"
              f"{'' if fans is None else f' {fans} fans'}"
              f"{' refused: ' + a.result['error'] if 'error' in a.result else ''}")  # fmt: skip
    n = len(run.texts)
    line("fans with a right answer (bot or agent)", f"{run.right:,} ({pct(run.right, n)})", "right")
    line("  of them from the agent's topic replies (auto-replies)",
         f"{run.right_by_agent:,} ({run.right_by_auto:,})")  # fmt: skip
    line("  of them from corrections of bot answers", f"{run.right_by_correction:,}")
    line(
        "fans with a right answer within 1 hour (simulated)",
        f"{run.within_hour:,} ({pct(run.within_hour, n)})",
    )
    line("  the broadcast itself took (outbox)", f"{run.fans / run.rate / 60:.1f} min")
    line(
        "  last agent reply (or auto-reply) left the outbox at",
        f"{run.last_agent_send_s / 60:.1f} min",
    )
    for why, count in run.not_right.most_common():
        line(f"  not right: {why}", f"{count:,}")


def report_wave2(run: Run) -> None:
    taught = [t for t in run.wave2 if t.phrase.category in run.taught]
    print(
        f"\nsecond wave: {len(run.wave2):,} fans, held-out phrasings of {len(run.taught)} taught topics"
    )
    line("taught-topic texts answered by the bot", pct(sum(t.verdict.right for t in taught), len(taught)),
         "taught_automated")  # fmt: skip
    line("taught-topic texts answered wrong", pct(sum(t.verdict.wrong for t in taught), len(taught)),
         "taught_wrong")  # fmt: skip
    for name in sorted(run.taught):
        mine = [t for t in taught if t.phrase.category == name]
        print(f"    {name:<14}{len(mine):>6} texts{sum(t.verdict.right for t in mine):>6} answered"
              f"{sum(t.verdict.wrong for t in mine):>6} wrong{sum(t.verdict.with_person for t in mine):>6}"
              " to a person")  # fmt: skip
    rest = [t for t in run.wave2 if t.phrase.kind in ("known", "small_talk")]
    first = [t for t in run.texts if t.phrase.kind in ("known", "small_talk")]
    line("known FAQs + small talk right: wave 1 / wave 2",
         f"{pct(sum(t.verdict.right for t in first), len(first))} / "
         f"{pct(sum(t.verdict.right for t in rest), len(rest))}")  # fmt: skip
    line("  wrong: wave 1 / wave 2",
         f"{pct(sum(t.verdict.wrong for t in first), len(first))} / "
         f"{pct(sum(t.verdict.wrong for t in rest), len(rest))}")  # fmt: skip


def report_grouping(run: Run) -> None:
    g = run.grouping
    print(f"\ngrouping {g['n']:,} waiting texts ({g['kind']})")
    line("  from stored vectors", f"{g['group_s']:.2f} s", "group_s")
    line("  with encoding", f"{g['encode_s'] + g['group_s']:.2f} s")
    line("  groups", f"{g['groups']:,}")


# ---- the agent at work ------------------------------------------------------------------------


async def work_the_storm(
    runtime: Any, run: Run, agent: Any, sweeps: list[Any], labels: dict[int, sm.Phrase],
    answers: dict[str, str], args: argparse.Namespace,
) -> None:  # fmt: skip
    """Texts arrive in simulated order; between two agent actions, what arrived meanwhile goes
    through the pipeline and the sweeps (topics, bot answers). Once the agent is done, the rest
    of the storm."""
    texts, i, clock = run.texts, 0, args.agent_start
    progress = Progress("wave 1 through the pipeline", len(texts))
    while True:
        j = i
        while j < len(texts) and (texts[j].at_s <= clock or agent.left <= 0):
            j += 1
        await run_texts(runtime, texts[i:j], answers, progress=progress)
        labels.update({t.message_id: t.phrase for t in texts[i:j]})
        i = j
        for sweep in sweeps:
            await bounded(sweep.run_once(), "a sweep")
        model = runtime.pipeline.brain.interpreter
        action = await bounded(agent.step(clock), "an agent action", 900)
        if action is not None:
            clock += args.action_seconds + await settle(runtime, action, agent, model)
            print(f"  action {len(agent.actions)} at {clock / 60:.1f} min: {action.kind} "
                  f"topic {action.topic_id} ({action.category})"
                  f"{' refused: ' + action.result['error'] if 'error' in action.result else ''}",
                  flush=True)  # fmt: skip
        elif i >= len(texts):
            break
        else:
            clock = max(clock + 60.0, texts[i].at_s)  # nothing to do: look again in a minute
    run.actions = agent.actions
    run.taught = set(agent.taught)


async def settle(
    runtime: Any, action: Any, agent: Any, before: Any, timeout_s: float = 300
) -> float:
    """After a teach: wait until the running bot answers with the retrained model (its reloader
    swaps it in for `before`). The seconds it took count as the agent's time too."""
    if action.kind not in ("teach", "learn") or "error" in action.result:
        return 0.0  # a refused teach changed nothing
    intent = agent.mix.topic(action.category).intent
    started = time.perf_counter()
    while (
        model := runtime.pipeline.brain.interpreter
    ) is before or intent not in model.metadata.get("intents", []):
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"the model taught {intent} was not loaded in {timeout_s:.0f} s")
        await asyncio.sleep(0.2)  # polling the running bot, not synchronising a test
    return time.perf_counter() - started


async def open_inbox(app: Any, base_url: str, how: str) -> tuple[Any, str]:
    """An admin agent (teaching needs one) and its inbox: the HTTP API when the app serves the
    topics routes, else the service functions behind them."""
    from argon2 import PasswordHasher

    from bench import storm_agent as sa_
    from bot.inbox.auth import Auth

    runtime = app.ctx.runtime
    auth = Auth(runtime.store.db, b"bench", hasher=PasswordHasher(time_cost=1, memory_cost=8192))
    password = uuid.uuid4().hex
    agent = await auth.create_agent("storm", password, role="admin", display_name="Storm Agent")
    if how != "service":
        async with httpx.AsyncClient(base_url=base_url) as probe:
            served = (await probe.get("/api/v1/topics")).status_code != 404
        if served or how == "http":
            return await sa_.HttpInbox.login(base_url, "storm", password), "HTTP API"
    from bot.teach.teacher import Teacher

    teacher = getattr(app.ctx, "teacher", None) or Teacher.for_runtime(runtime)
    app.ctx.teacher = teacher  # one teacher per fan line: its trainings never overlap
    return sa_.ServiceInbox(runtime.store.db, agent, teacher), "services"


def topic_sweep(app: Any, runtime: Any) -> Any:
    """The app's own sweep when it runs one, else one on the app's database and model."""
    for name in ("topics", "topic_sweep", "sweep"):
        sweep = getattr(app.ctx, name, None)
        if sweep is not None and hasattr(sweep, "run_once"):
            return sweep
    from bot.topics.sweep import TopicSweep
    from bot.topics.vectors import vectoriser_for

    brain = runtime.pipeline
    return TopicSweep(runtime.store.db, lambda: vectoriser_for(brain.brain.interpreter))


# ---- what reached the fans --------------------------------------------------------------------


async def read_outcome(db: Any, run: Run, agent: Any, labels: dict[int, sm.Phrase]) -> None:
    from bot.storage.review_tables import answer_correction_fans
    from bot.storage.topic_tables import topic_reply_fans, topic_texts

    def read(conn: Any) -> tuple[list[Any], list[Any], list[int], list[Any]]:
        placed = conn.execute(sa.select(topic_texts.c.message_id, topic_texts.c.topic_id,
                                        topic_texts.c.placed_by)).all()  # fmt: skip
        fans = conn.execute(sa.select(topic_reply_fans)).all()
        sent = conn.execute(sa.select(messages.c.id).where(messages.c.kind == "broadcast")).all()
        corrected = conn.execute(sa.select(answer_correction_fans)).all()
        return placed, fans, [r.id for r in sent], corrected

    placed, reply_fans, broadcast_ids, corrected = await db.run(read)
    measure_topics(run, placed, labels)
    measure_answers(run, agent, reply_fans, broadcast_ids, corrected)


def measure_topics(run: Run, placed: list[Any], labels: dict[int, sm.Phrase]) -> None:
    members: dict[int, list[str]] = defaultdict(list)
    by_sweep: dict[int, list[str]] = defaultdict(list)
    for r in placed:
        if r.topic_id is None or r.message_id not in labels:
            continue
        members[r.topic_id].append(labels[r.message_id].category)
        if r.placed_by is None:
            by_sweep[r.topic_id].append(labels[r.message_id].category)
    run.topics_all = len(members)
    run.topics_3plus = sum(len(m) >= 3 for m in members.values())
    run.topic_texts = sum(len(m) for m in members.values())
    run.purity, run.purity_after = purity(by_sweep), purity(members)


def purity(groups: dict[int, list[str]]) -> float:
    """The share of each topic's texts from its majority category, weighted by size."""
    total = sum(len(g) for g in groups.values())
    top = sum(Counter(g).most_common(1)[0][1] for g in groups.values() if g)
    return 100.0 * top / total if total else 0.0


def measure_answers(
    run: Run, agent: Any, reply_fans: list[Any], broadcast_ids: list[int],
    corrected: Sequence[Any] = (),
) -> None:  # fmt: skip
    """Who got a right answer, and when: bot answers inline at arrival, the agent's (topic
    replies, corrections of bot answers) through the outbox behind the broadcast, paced
    (`outbox_times`)."""
    by_contact = {t.fan.contact_id: t for t in run.texts}
    acted = {int(a.result["reply_id"]): a.at_s for a in agent.actions if a.kind == "reply"}
    fixed = {int(a.result["correction_id"]): a.at_s for a in agent.actions
             if a.kind == "correct" and "correction_id" in a.result}  # fmt: skip
    rows = [(i, 0.0) for i in broadcast_ids]
    for r in reply_fans:
        text = by_contact.get(r.contact_id)
        rows.append((r.message_id, text.at_s if r.auto and text else acted.get(r.reply_id, 0.0)))
    rows += [(r.message_id, fixed.get(r.correction_id, 0.0)) for r in corrected]
    sent = outbox_times(rows, run.rate)
    # (category answered, sent at, source) of every agent text each fan got
    got: dict[int, list[tuple[str | None, float, str]]] = defaultdict(list)
    for r in reply_fans:
        got[r.contact_id].append((agent.reply_category.get(r.reply_id), sent[r.message_id],
                                  "auto" if r.auto else "agent"))  # fmt: skip
    for r in corrected:
        got[r.contact_id].append((agent.correction_category.get(r.correction_id),
                                  sent[r.message_id], "correction"))  # fmt: skip
    run.last_agent_send_s = max((at for g in got.values() for _, at, _ in g), default=0.0)
    for t in run.texts:
        best, source = (t.at_s, "bot") if t.verdict.right else (math.inf, "")
        for category, at, kind in got[t.fan.contact_id]:
            if category in t.phrase.accepted and at < best:
                best, source = at, kind
        t.answered_by, t.answered_s = source or None, best
        if best < math.inf:
            run.right += 1
            run.right_by_agent += source in ("agent", "auto")
            run.right_by_auto += source == "auto"
            run.right_by_correction += source == "correction"
            run.within_hour += best - t.at_s <= 3600
        else:
            run.not_right[why_not(t, got[t.fan.contact_id], agent)] += 1


def why_not(t: Text, replies: list[Any], agent: Any) -> str:
    v = t.verdict
    if t.phrase.kind == "opt_out":
        return "opt-out not honoured"
    if not v.with_person and v.wrong:
        return f"bot answered wrong, {'a correction answered another question' if replies else 'not corrected'}"
    if not v.with_person:
        return "bot gave no answer, no person"
    if replies:
        return "the topic's answer was another question's"
    return "waiting for a person"


# ---- second wave, grouping --------------------------------------------------------------------


async def second_wave(runtime: Any, run: Run, mix: sm.Mix, fans: list[Fan], args: Any) -> None:
    rng = random.Random(args.seed + 1)
    replied = {t.fan.contact_id for t in run.texts}
    others = [f for f in fans if f.contact_id not in replied]
    n = min(len(others), max(1, round(len(fans) * args.second_wave_share)))
    chosen = rng.sample(others, n)
    run.wave2 = [
        Text(f, p, 0.0, 2) for f, p in zip(chosen, sm.draw(mix, rng, n, wave=2), strict=True)
    ]
    answers = {t.name: t.answer for t in mix.topics}
    await run_texts(
        runtime, run.wave2, answers, progress=Progress("wave 2 through the pipeline", n)
    )


async def time_grouping(runtime: Any, sweep: Any, mix: sm.Mix, n: int, seed: int) -> dict[str, Any]:
    """Grouping n waiting texts drawn from the mix: encoding, then grouping the vectors."""
    from bot.topics import grouping
    from bot.topics.vectors import vectoriser_for

    rng = random.Random(seed + 2)
    drawn = sm.draw(mix, rng, 2 * n, wave=1)  # opt-outs never wait for a person: left out
    texts = [p.text for p in drawn if p.kind != "opt_out"][:n]
    vectoriser = vectoriser_for(runtime.pipeline.brain.interpreter)
    _, distance = sweep.thresholds(vectoriser)
    t0 = time.perf_counter()
    vectors = await asyncio.to_thread(vectoriser.encode, texts)
    t1 = time.perf_counter()
    groups = await asyncio.to_thread(grouping.group, vectors, distance)
    t2 = time.perf_counter()
    return {"n": len(texts), "kind": vectoriser.kind, "encode_s": t1 - t0, "group_s": t2 - t1,
            "groups": int(groups.max()) + 1 if len(groups) else 0}  # fmt: skip


# ---- the run ----------------------------------------------------------------------------------


def settings_for(project: Path, url: str, public_url: str, pipeline: str | None) -> Any:
    env = {"FANLINE_DATABASE_URL": url, "FANLINE_SECRET_KEY": "bench",
           "FANLINE_PUBLIC_URL": public_url}  # fmt: skip
    if pipeline:
        env["FANLINE_NLU_PIPELINE"] = pipeline
    return load_settings(project, env=env)


async def storm(args: argparse.Namespace, url: str, tmp: Path) -> Run:
    from bench.storm_agent import ScriptedAgent, faq_answers
    from bot.app import create_app
    from bot.testing import bind_local, serve_in_process, url_of

    mix = sm.load_mix(args.mix)
    project = project_copy(tmp)
    sock = bind_local()
    settings = settings_for(project, url, url_of(sock), args.pipeline)
    run = Run(args.fans, args.rate or settings.send_rate)
    t0 = time.perf_counter()
    store = Store.open(url, hash_key=settings.secret_key)
    fans = await asyncio.to_thread(seed_fans, store, args.fans, run.rate)
    await send_broadcast(store, mix.broadcast, run.rate)
    store.close()
    print(
        f"seeded {args.fans:,} fans and the broadcast in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    run.texts = plan_wave1(mix, fans, args.reply_share, random.Random(args.seed))
    app = create_app(settings, name=f"storm_{uuid.uuid4().hex[:8]}")
    async with serve_in_process(app, sock) as base_url:
        runtime = app.ctx.runtime
        inbox, how = await open_inbox(app, base_url, args.inbox)
        print(f"the agent works through the {how}", flush=True)
        labels: dict[int, sm.Phrase] = {}
        agent = ScriptedAgent(inbox, labels, mix, faq_answers(project), budget=args.max_actions)
        sweep = topic_sweep(app, runtime)
        sweeps = [sweep] + [s for s in (getattr(app.ctx, "answers", None),) if s is not None]
        t0 = time.perf_counter()
        await work_the_storm(runtime, run, agent, sweeps, labels,
                             {t.name: t.answer for t in mix.topics}, args)  # fmt: skip
        run.timings["storm_s"] = time.perf_counter() - t0
        await read_outcome(runtime.store.db, run, agent, labels)
        await second_wave(runtime, run, mix, fans, args)
        run.grouping = await time_grouping(runtime, sweep, mix, args.group_texts, args.seed)
        if hasattr(inbox, "aclose"):
            await inbox.aclose()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fans", type=int, default=20_000)
    ap.add_argument("--reply-share", type=float, default=0.15, help="share of fans who reply")
    ap.add_argument("--second-wave-share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", default=None, help="PostgreSQL (a throwaway schema)")
    ap.add_argument("--pipeline", choices=["accurate", "default"], default=None,
                    help="NLU pipeline (default: the demo's config.yml, accurate)")  # fmt: skip
    ap.add_argument("--rate", type=float, default=None, help="texts/s per number (config.yml)")
    ap.add_argument("--agent-start", type=float, default=300.0, help="seconds after the broadcast")
    ap.add_argument("--action-seconds", type=float, default=20.0)
    ap.add_argument("--max-actions", type=int, default=30)
    ap.add_argument("--group-texts", type=int, default=10_000)
    ap.add_argument("--inbox", choices=["auto", "http", "service"], default="auto")
    ap.add_argument("--mix", type=Path, default=sm.DATA,
                    help="the storm's mix (default bench/data/reply_storm.yml; a held-out one: "
                    "bench/data/heldout/reply_storm_album.yml)")  # fmt: skip
    args = ap.parse_args()
    print_baseline()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="fanline-storm-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        url = f"sqlite:///{tmp}/storm.db"
        if args.database_url:
            from bot.storage.db import scratch_schema

            url = stack.enter_context(scratch_schema(args.database_url, "storm"))
        run = asyncio.run(storm(args, url, Path(tmp)))
    report_wave1(run)
    report_topics(run)
    report_agent(run)
    report_categories(run)
    report_wave2(run)
    report_grouping(run)
    print(f"\ndone in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
