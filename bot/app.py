"""Composition root: `create_app(settings)` wires the runtime, channels, sender and web routes.

Nothing imports this module back; it is the only place that knows every part.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, json, raw

from bot import logs, metrics, ops, roles, unanswered
from bot.audience.broadcasts import BroadcastService
from bot.audience.redirect import redirect_blueprint
from bot.audience.scheduler import TimedFlows
from bot.audience.signup import signup_blueprint
from bot.channels.simulator import SimulatorFeed, simulator_blueprint
from bot.channels.twilio_gateway import LocalGateway, TwilioGateway
from bot.channels.twilio_webhook import webhook_blueprint
from bot.errors import HttpError
from bot.escalation import EscalationTimer, Missed
from bot.flows.responses import Responses
from bot.inbox import build_hub, inbox_blueprints
from bot.leases import Singleton, holder_id
from bot.messages import InboundSms, OutboundSms
from bot.outbound import sender_for
from bot.pipeline import TurnOutcome
from bot.reloader import Reloader
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.flow_job_store import ShortLinks
from bot.topics.review_sweep import AnswerSweep
from bot.topics.sweep import TopicSweep
from bot.topics.vectors import vectoriser_for

log = logging.getLogger(__name__)
DRAIN_S = 30.0  # at most this long a stopping process waits for turns still running
_IN_FLIGHT: set[asyncio.Future[Any]] = set()  # turns of this process not finished yet


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the webhook answers Twilio: the replies that made it into the reply budget."""

    twiml_replies: list[OutboundSms]
    durable: bool = True  # False: the text is not committed yet, so it is not acknowledged


def create_app(settings: Settings, *, name: str = "fanline") -> Sanic:
    # Sanic's loggers go through ours (JSON when asked, personal data scrubbed); a spawned
    # worker process starts with no logging at all, so it is configured here too
    logs.ensure_configured(json_lines=settings.log_json)
    app = Sanic(name, configure_logging=False)
    app.config.RESPONSE_TIMEOUT = 30
    app.config.REQUEST_MAX_SIZE = 1_000_000  # a Twilio form is a few KB
    app.ctx.settings = settings
    app.ctx.feed = SimulatorFeed()
    app.ctx.runtime = None
    app.ctx.holder = holder_id()  # this process, in the leases of singleton jobs
    app.ctx.draining = False
    web = roles.serves_fans(settings.role)  # a worker serves only health and metrics

    async def handle(msg: InboundSms, *, budget: float) -> WebhookAnswer:
        return await answer_within_budget(
            app.ctx.runtime, msg, budget, lambda: _wake(app), ack_s=settings.ack_timeout_s
        )

    async def reports(report: Any) -> None:
        await app.ctx.runtime.store.apply_delivery_report(report)

    async def handle_local(msg: InboundSms) -> None:
        await app.ctx.runtime.handle(msg)

    app.ctx.hub = build_hub(settings)  # the agents' live feed and escalation webhook
    if web:
        _fan_routes(app, settings, handle, reports, handle_local)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        runtime = await Runtime.start(
            settings,
            on_commit=lambda outcome: (
                outcome.to_send and _wake(app),
                app.ctx.hub.publish_outcome(outcome),
                outcome.escalation is not None and _wake_topics(app),  # a hand-off: group it
            ),
        )  # the inbox's live feed
        app.ctx.runtime = runtime
        await app.ctx.hub.start()  # PostgreSQL: events to and from the other processes
        gateway = _gateway(settings, app.ctx.feed)
        sender = sender_for(settings, runtime.store, gateway)  # one rate per number, shared
        app.ctx.sender, app.ctx.gateway = sender, gateway
        app.ctx.stop = asyncio.Event()
        app.ctx.broadcasts = BroadcastService(
            runtime.store,
            default_rate=settings.send_rate,
            links=settings.links,
            public_url=settings.public_url,
        )
        app.ctx.escalations = EscalationTimer(
            runtime.store, lambda: runtime.pipeline.brain.responses,
            on_missed=lambda missed: (_wake(app), _announce_missed(app.ctx.hub, missed)),
        )  # fmt: skip
        app.ctx.topics = TopicSweep(
            runtime.store.db, lambda: vectoriser_for(runtime.pipeline.brain.interpreter),
            settings.topics, on_sent=lambda result: _wake(app),
        )  # fmt: skip
        # broadcast replies the bot answered, grouped for review ("Bot answers"): same encoder
        app.ctx.answers = AnswerSweep(runtime.store.db, app.ctx.topics.vectoriser_provider,
                                      settings.topics)  # fmt: skip
        # a teach records a retrain request; the process holding the `retrain` lease trains it
        from bot.teach.teacher import Teacher

        app.ctx.teacher = Teacher.for_runtime(runtime, holder=app.ctx.holder)
        _start_jobs(app, settings, runtime)

    @app.before_server_stop
    async def stop(app: Sanic) -> None:
        # SIGTERM: not ready any more; jobs finish what is in flight, leases are released
        app.ctx.draining = True
        app.ctx.stop.set()
        await asyncio.gather(*app.ctx.tasks, return_exceptions=True)
        await app.ctx.gateway.aclose()
        await app.ctx.hub.aclose()  # ends the live feeds' streams, so the server can close

    app.after_server_stop(_close)

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        body, status = await _readiness(app)
        return json(body, status=status)

    @app.get("/metrics")
    async def prometheus(request: Request) -> HTTPResponse:
        return raw(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.exception(HttpError)
    async def http_error(request: Request, exc: HttpError) -> HTTPResponse:
        return json({"error": str(exc)}, status=exc.status)

    return app


async def answer_within_budget(
    runtime: Runtime, msg: InboundSms, budget: float, wake: Any = None, *, ack_s: float = 10.0
) -> WebhookAnswer:
    """Run the turn; replies ready within the budget go back inline as TwiML, later ones by API.

    The turn runs as its own task and marks the replies it commits within the budget `twiml`.
    If the budget runs out first, the webhook answers with nothing as soon as the text itself
    is committed (durable), and once the turn commits its replies are released to the sender.
    A text not committed within `ack_s` is not acknowledged (`durable=False`: a 503, so Twilio
    delivers it again; the redelivery is idempotent). Twilio waits 15 s for an answer.
    """
    recorded = asyncio.Event()
    task = asyncio.ensure_future(runtime.handle(msg, inline_s=budget, recorded=recorded))
    _IN_FLIGHT.add(task)  # a drain waits for it, even once the webhook has answered
    task.add_done_callback(_IN_FLIGHT.discard)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if done:
        outcome: TurnOutcome = task.result()
        # a redelivery gets what we answered inline before (Twilio may not have received it)
        return WebhookAnswer([q.reply for q in outcome.replies if q.status == "twiml"])
    durable = await _committed(recorded, task, max(ack_s - budget, 0.0))
    asyncio.ensure_future(_release_when_done(runtime, task, wake))
    if not durable:
        log.warning("inbound text not committed within %.1f s: answered 503", ack_s)
    return WebhookAnswer([], durable=durable)


async def _committed(recorded: asyncio.Event, task: asyncio.Future[Any], timeout: float) -> bool:
    """Whether the text is committed within `timeout` (a turn failing before that: False)."""
    waiter = asyncio.ensure_future(recorded.wait())
    await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    return recorded.is_set()


async def _release_when_done(runtime: Runtime, task: asyncio.Future[Any], wake: Any) -> None:
    """The budget ran out: once the turn commits, its replies go out by API straight away."""
    try:
        outcome: TurnOutcome = await task
        await runtime.store.release_held([q.outbox_id for q in outcome.replies])
    except Exception:  # a background task's top: log, never raise into the loop
        log.exception("turn failed after the webhook answered")
        return
    if wake is not None:
        wake()


async def _close(app: Sanic) -> None:
    """The database goes last, once the server has answered the requests in flight (status
    callbacks, texts) and the turns that ran past their reply budget have committed: none of
    them finds it closed under it."""
    if _IN_FLIGHT:
        await asyncio.wait(set(_IN_FLIGHT), timeout=DRAIN_S)
    await app.ctx.runtime.close()


def _start_jobs(app: Sanic, settings: Settings, runtime: Runtime) -> None:
    """The role's background jobs; a singleton runs only while this process holds its lease."""
    jobs = {
        "outbox-sender": app.ctx.sender.run,
        "content-reloader": Reloader(runtime).run,
        "broadcasts": app.ctx.broadcasts.run_scheduler,
        # texts a crash left unanswered: when the lease is taken, then periodically. Beside
        # other processes (PostgreSQL) a recent text may be another's turn in flight, and its
        # id may be ahead of one not committed yet: even the first pass leaves recent ones
        "unanswered": lambda stop: unanswered.run(
            runtime.pipeline,
            stop,
            first_older_than_s=0.0 if runtime.store.db.is_sqlite else unanswered.GRACE_S,
        ),
        "escalation-timer": app.ctx.escalations.run,
        "topic-sweep": app.ctx.topics.run,
        "answer-sweep": app.ctx.answers.run,
        "retrain": app.ctx.teacher.run,  # a teach's request, trained in a child process
        # flows that start in time; beside other processes a cursor stops short of the last
        # 30 s (a lower id may still commit), as the unanswered pass does
        "timed-flows": TimedFlows(
            runtime.pipeline,
            grace_s=0.0 if runtime.store.db.is_sqlite else unanswered.GRACE_S,
            links=ShortLinks(settings.links.base(settings.public_url), settings.links.utm)
            if settings.links.track_responses
            else None,
        ).run,
    }
    app.ctx.singletons = {}
    app.ctx.tasks = []
    for job_name, single in roles.jobs_for(settings.role):
        job = jobs[job_name]
        if single:
            lease = Singleton(runtime.store.db, job_name, job, holder=app.ctx.holder,
                              ttl_s=settings.lease_ttl_s)  # fmt: skip
            app.ctx.singletons[job_name] = lease
            job = lease.run
        app.ctx.tasks.append(asyncio.create_task(job(app.ctx.stop), name=job_name))


async def _readiness(app: Sanic) -> tuple[dict[str, Any], int]:
    """Database reachable, model loaded, schema at the newest migration, not draining."""
    runtime: Runtime | None = app.ctx.runtime
    role = app.ctx.settings.role
    if runtime is None:
        return {"status": "starting", "role": role}, 503
    if app.ctx.draining:
        return {"status": "draining", "role": role}, 503
    try:
        revision = await runtime.store.db.run(ops.schema_revision)
    except Exception:  # readiness reports, it never raises
        return {"status": "database unreachable", "role": role}, 503
    if revision != ops.head_revision():  # `fanline db upgrade` has not run (or newer code ran)
        return {"status": "migrations pending", "role": role, "schema": revision,
                "code": ops.head_revision()}, 503  # fmt: skip
    held = sorted(n for n, lease in getattr(app.ctx, "singletons", {}).items() if lease.held)
    model = runtime.pipeline.brain.interpreter.fingerprint[:12]
    return {"status": "ready", "role": role, "model": model, "singletons": held}, 200


def _fan_routes(app: Sanic, settings: Settings, handle: Any, reports: Any, local: Any) -> None:
    """What the web role serves: webhooks, simulator, signups and links, the inbox and its API."""
    auth_token = settings.twilio.auth_token if settings.twilio else ""
    app.blueprint(
        webhook_blueprint(
            handle,
            reports,
            auth_token=auth_token,
            public_base_url=settings.public_url,
            reply_budget_s=settings.reply_budget_s,
        )
    )
    if settings.local_mode:
        app.blueprint(simulator_blueprint(local, app.ctx.feed))
    app.blueprint(
        signup_blueprint(
            settings,
            lambda: app.ctx.runtime.store,
            lambda: Responses(app.ctx.runtime.content.domain),
            on_queued=lambda: _wake(app),
        )
    )
    app.blueprint(redirect_blueprint(lambda: app.ctx.runtime.store.db))  # /l/<code>
    for bp in inbox_blueprints(  # /inbox pages and /api/v1
        db=lambda: app.ctx.runtime.store.db,
        settings=settings,
        hub=app.ctx.hub,
        notify_outbox=lambda: _wake(app),
        broadcasts=lambda: app.ctx.broadcasts,
        runtime=lambda: app.ctx.runtime,  # the loaded content's intents (label picker)
        sweep=lambda: getattr(app.ctx, "topics", None),
        teacher=lambda: _teacher(app),
    ):
        app.blueprint(bp)


def _announce_missed(hub: Any, missed: list[Missed]) -> None:
    for m in missed:
        hub.publish("thread", {"conversation_id": m.conversation_id, "contact_id": m.contact_id,
                               "action": "missed"})  # fmt: skip


def _wake(app: Sanic) -> None:
    sender = getattr(app.ctx, "sender", None)
    if sender is not None:
        sender.notify()


def _wake_topics(app: Sanic) -> None:
    sweep = getattr(app.ctx, "topics", None)
    if sweep is not None:
        sweep.notify()


def _teacher(app: Sanic) -> Any:
    """The fan line's teacher (make an FAQ, accept a suggestion): it records retrain requests."""
    return getattr(app.ctx, "teacher", None)


def _gateway(settings: Settings, feed: SimulatorFeed) -> Any:
    if settings.twilio is None:
        return LocalGateway(feed)
    tw = settings.twilio
    return TwilioGateway(
        tw.account_sid,
        tw.auth_token,
        from_number=tw.number,
        messaging_service_sid=tw.messaging_service_sid,
        status_callback_url=settings.public_url + "/webhooks/twilio/status",
        base_url=tw.api_base_url,
    )
