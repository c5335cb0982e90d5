"""Broadcast progress for the inbox: what each broadcast has done so far, and its controls.

Off the inbound path, beside the queue: broadcasts are sent by the outbox sender (see
`bot.audience.broadcasts`); the inbox only reads `BroadcastService.stats` and lets admins pause,
resume or cancel, and send an A/B broadcast's winner to the rest. Every agent may watch; the routes in `api.py` and `views.py` apply the roles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.audience.broadcast_model import Broadcast, BroadcastStats
from bot.audience.broadcasts import BroadcastService
from bot.errors import NotFound
from bot.settings import Settings
from bot.storage import Database, Store

ACTIONS = ("pause", "resume", "cancel", "send-winner")
LISTED = 20  # the newest broadcasts; older ones are history (`fanline broadcast list`)


@dataclass(frozen=True, slots=True)
class Progress:
    """One broadcast's counts; a text is in exactly one of queued, held, sent, delivered,
    failed, cancelled or skipped."""

    id: int
    name: str
    status: str  # draft | scheduled | enqueuing | sending | paused | cancelled | failed | completed
    send_at: datetime | None
    started_at: datetime | None
    recipients: int  # texts written to the outbox so far
    queued: int  # waiting for the sender (queued, or handed to it)
    held: int  # paused
    sent: int  # accepted by Twilio, no delivery report yet
    delivered: int
    failed: int
    cancelled: int
    skipped: int  # over the fan's frequency cap (bot.audience.frequency): never sent
    failed_by_code: dict[str, int] = field(default_factory=dict)
    opted_out_since: int = 0
    replied: int = 0
    error: str | None = None  # why a `failed` broadcast failed
    clicks: int = 0  # texts whose tracked link a person tapped
    # A/B: per variant label, sent, clicks, ctr, replies, reply_rate, winner
    variants: tuple[dict[str, Any], ...] = ()
    winner_pending: bool = False  # A/B test written, the rest still held: "Send winner"

    @property
    def done(self) -> int:
        return self.sent + self.delivered + self.failed + self.cancelled + self.skipped

    @property
    def running(self) -> bool:
        """Still changing, so the page keeps polling: starting, texts waiting for the sender,
        or texts sent and waiting for their delivery reports."""
        starting = self.status in ("scheduled", "enqueuing")
        reports = self.status in ("sending", "completed") and self.sent > 0
        return starting or self.queued > 0 or reports

    def to_json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {
            "id": self.id, "name": self.name, "status": self.status,
            "send_at": iso(self.send_at), "started_at": iso(self.started_at),
            "recipients": self.recipients, "queued": self.queued, "held": self.held,
            "sent": self.sent, "delivered": self.delivered, "failed": self.failed,
            "cancelled": self.cancelled, "skipped": self.skipped, "failed_by_code": self.failed_by_code,
            "opted_out_since": self.opted_out_since, "replied": self.replied,
            "done": self.done, "running": self.running, "error": self.error,
            "clicks": self.clicks, "variants": list(self.variants),
            "winner_pending": self.winner_pending,
        }  # fmt: skip


def progress(b: Broadcast, s: BroadcastStats) -> Progress:
    return Progress(
        id=b.id, name=b.name, status=s.status, send_at=b.send_at, started_at=b.started_at,
        recipients=s.recipients, queued=s.count("queued", "sending"), held=s.count("paused"),
        sent=s.count("sent"), delivered=s.count("delivered", "read"),
        failed=s.count("failed", "undelivered"), cancelled=s.count("cancelled"), skipped=s.count("skipped"),
        failed_by_code=dict(sorted(s.failed_by_code.items())),
        opted_out_since=s.opted_out_since, replied=s.replied, error=s.error, clicks=s.clicks,
        variants=tuple(
            {"label": v.label, "sent": v.sent, "clicks": v.clicks, "ctr": round(v.ctr, 4),
             "replies": v.replies, "reply_rate": round(v.reply_rate, 4), "winner": v.winner}
            for v in s.variants
        ),
        winner_pending=bool(s.variants) and b.decide_at is not None
        and b.winner_sent_at is None and s.status == "sending",
    )  # fmt: skip


async def list_progress(service: BroadcastService, *, limit: int = LISTED) -> list[Progress]:
    """The newest broadcasts first, each with its live counts."""
    newest = sorted(await service.all(), key=lambda b: b.id, reverse=True)[:limit]
    return [progress(b, await service.stats(b.id)) for b in newest]


async def one_progress(service: BroadcastService, broadcast_id: int) -> Progress:
    return progress(await service.get(broadcast_id), await service.stats(broadcast_id))


async def control(service: BroadcastService, broadcast_id: int, action: str) -> int:
    """Pause, resume or cancel (the caller checked the role); returns the texts it moved."""
    if action == "pause":
        return await service.pause(broadcast_id)
    if action == "resume":  # the scheduler finishes an interrupted enqueue, not this request
        return await service.resume(broadcast_id, enqueue=False)
    if action == "cancel":
        return await service.cancel(broadcast_id)
    if action == "send-winner":  # the scheduler writes the rest's texts on its next step
        await service.send_winner(broadcast_id)
        return 0
    raise NotFound("no such action")


def service_for(db: Callable[[], Database], settings: Settings) -> Callable[[], BroadcastService]:
    """A BroadcastService over the inbox's database, built once that database exists."""
    built: dict[int, BroadcastService] = {}

    def get() -> BroadcastService:
        database = db()
        if id(database) not in built:
            built.clear()  # a new database (tests, restarts): drop the old service
            store = Store(database, hash_key=settings.secret_key,
                          reply_window_h=settings.reply_window_h)  # fmt: skip
            built[id(database)] = BroadcastService(store, default_rate=settings.send_rate,
                                                   links=settings.links,
                                                   public_url=settings.public_url)  # fmt: skip
        return built[id(database)]

    return get
