"""Report value types (pure; shared by `storage/report_store.py`, `reports.py` and the charts).

Rates are over the texts that reached a phone: delivered, or sent where no delivery report came
back (the local simulator, carriers that never report). Counts of people (clicks, replies,
opt-outs, hand-offs) are distinct fans, so a fan who clicks twice is one click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class SendFigures:
    """One broadcast's (or one variant's) texts and what the fans did within the window."""

    label: str  # "all", or the variant's label (A, B, ...)
    sent: int = 0  # handed to Twilio (then delivered, failed or still awaiting a report)
    delivered: int = 0
    failed: int = 0
    skipped: int = 0  # never sent: over the frequency cap
    queued: int = 0  # not sent yet (queued, held, paused)
    failed_by_code: dict[str, int] = field(default_factory=dict)
    clicks: int = 0  # fans who clicked a link of theirs (people, not previews or bots)
    replies: int = 0  # fans who texted back within the window
    opt_outs: int = 0  # fans who opted out within the window
    hand_offs: int = 0  # fans handed to a person within the window
    winner: bool = False

    @property
    def reached(self) -> int:
        return self.delivered or self.sent

    def rate(self, fans: int) -> float:
        return fans / self.reached if self.reached else 0.0

    @property
    def ctr(self) -> float:
        return self.rate(self.clicks)

    @property
    def reply_rate(self) -> float:
        return self.rate(self.replies)


@dataclass(frozen=True, slots=True)
class BroadcastReport:
    id: int
    name: str
    status: str
    started_at: datetime | None
    window_h: int  # replies, opt-outs and hand-offs counted this long after each fan's text
    total: SendFigures
    variants: tuple[SendFigures, ...] = ()


@dataclass(frozen=True, slots=True)
class Day:
    """The line on one UTC day."""

    day: date
    texts_in: int = 0
    answered_by_bot: int = 0  # fan texts the bot answered itself (no hand-off, not held)
    hand_offs: int = 0  # escalations opened
    first_answer_median_s: float | None = None  # hand-off to a person's first answer
    opt_ins: int = 0  # opt-ins and re-subscriptions
    opt_outs: int = 0
    list_size: int = 0  # subscribed fans at the end of the day


@dataclass(frozen=True, slots=True)
class FunnelStep:
    step: str  # "started", then the flow's step ids
    fans: int


@dataclass(frozen=True, slots=True)
class Funnel:
    flow: str
    steps: tuple[FunnelStep, ...]

    @property
    def started(self) -> int:
        return self.steps[0].fans if self.steps else 0


@dataclass(frozen=True, slots=True)
class TopTopic:
    id: int
    label: str
    size: int  # texts in it
    status: str
    broadcast_id: int | None


@dataclass(frozen=True, slots=True)
class LineReport:
    since: datetime
    until: datetime
    days: tuple[Day, ...]
    funnels: tuple[Funnel, ...]
    topics: tuple[TopTopic, ...]
    broadcasts: tuple[BroadcastReport, ...] = ()
