"""A test-only, in-memory OutboxStore: a stand-in for bot.storage's Store in sender tests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.messages import DeliveryReport
from bot.outbound import OutboxItem, SendResult


@dataclass
class Row:
    id: int
    to: str
    body: str
    sender: str | None = None
    media_urls: tuple[str, ...] = ()
    kind: str = "reply"
    status: str = "queued"
    attempts: int = 0
    not_before: float = 0.0
    sid: str | None = None
    segments: int | None = None
    encoding: str | None = None
    error: str | None = None
    code: int | None = None
    lookups: int = 0
    delivery: list[str] = field(default_factory=list)
    retry_delays: list[float] = field(default_factory=list)


class MemoryOutboxStore:
    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.opted_out: set[str] = set()
        self.claims = 0
        self._next = 1

    def add(self, to: str, body: str, **kw: object) -> Row:
        row = Row(self._next, to, body, **kw)  # type: ignore[arg-type]
        self.rows[row.id] = row
        self._next += 1
        return row

    def pending(self) -> list[Row]:
        return [r for r in self.rows.values() if r.status in ("queued", "sending", "in_doubt")]

    async def reserve_outbox(self, limit: int, lease_s: float) -> list[OutboxItem]:
        self.claims += 1
        now = time.monotonic()
        items = []
        for row in self.rows.values():
            if len(items) == limit:
                break
            if row.status != "queued" or row.not_before > now:
                continue
            row.not_before = now + lease_s
            items.append(_item(row))
        return items

    async def claim_sends(self, items: Sequence[OutboxItem]) -> list[OutboxItem]:
        claimed = []
        for item in items:
            row = self.rows[item.id]
            if row.status != "queued" or row.attempts != item.attempts:
                continue
            if row.to in self.opted_out and row.kind != "compliance":
                row.status = "cancelled"
                continue
            row.status = "sending"
            row.attempts += 1
            claimed.append(_item(row))
        return claimed

    async def claim_outbox(self, limit: int) -> list[OutboxItem]:
        return await self.claim_sends(await self.reserve_outbox(limit, 60.0))

    async def outbox_in_doubt(
        self, item: OutboxItem, delay_s: float, error: str, *, give_up: bool = False
    ) -> None:
        row = self.rows[item.id]
        assert row.status in ("sending", "in_doubt"), row.status
        row.status = "unknown" if give_up else "in_doubt"
        row.error, row.lookups = error, row.lookups + 1
        row.not_before = time.monotonic() + delay_s

    async def uncertain_counts(self) -> dict[str, int]:
        states = [r.status for r in self.rows.values() if r.status in ("in_doubt", "unknown")]
        return {s: states.count(s) for s in set(states)}

    async def due_in_doubt(self, limit: int = 500) -> list[OutboxItem]:
        now = time.monotonic()
        due = [r for r in self.rows.values() if r.status == "in_doubt" and r.not_before <= now]
        return [_item(r) for r in due[:limit]]

    def _sending(self, outbox_id: int) -> Row:
        row = self.rows[outbox_id]
        if row.status != "sending":  # a result for a row nobody claimed: a sender bug
            raise AssertionError(f"row {outbox_id} is {row.status}, not sending")
        return row

    async def outbox_sent(self, results: Sequence[tuple[int, str, int, str]]) -> None:
        for outbox_id, sid, segments, encoding in results:
            row = self._sending(outbox_id)
            row.status, row.sid, row.segments, row.encoding = "sent", sid, segments, encoding

    async def outbox_retry(self, outbox_id: int, delay_s: float, error: str) -> None:
        row = self._sending(outbox_id)
        row.status, row.error = "queued", error
        row.not_before = time.monotonic() + delay_s
        row.retry_delays.append(delay_s)

    async def outbox_failed(self, outbox_id: int, code: int | None, error: str) -> None:
        row = self._sending(outbox_id)
        row.status, row.code, row.error = "failed", code, error
        if code == 21610:
            self.opted_out.add(row.to)

    async def stale_sending(self, older_than_s: float, limit: int = 500) -> list[OutboxItem]:
        return []  # a memory store dies with its sender: nothing to recover

    async def settle_sending(
        self, lookups: Sequence[tuple[OutboxItem, Sequence[SendResult]]]
    ) -> tuple[int, int]:
        taken = {r.sid for r in self.rows.values() if r.sid}
        sent = requeued = 0
        for item, found in lookups:
            row = self.rows[item.id]
            if row.status not in ("sending", "in_doubt") or row.attempts != item.attempts:
                continue
            mine = next((r for r in found if r.sid not in taken), None)
            if mine is None:
                row.status, row.not_before, requeued = "queued", 0.0, requeued + 1
                continue
            taken.add(mine.sid)
            row.status, row.sid, row.segments, sent = "sent", mine.sid, mine.segments, sent + 1
        return sent, requeued

    async def apply_delivery_report(self, report: DeliveryReport) -> bool:
        for row in self.rows.values():
            if row.sid == report.channel_id:
                row.delivery.append(report.status)
                row.code = report.error_code
                return True
        return False


def _item(row: Row) -> OutboxItem:
    return OutboxItem(
        row.id, row.id, None, row.to, row.sender, row.body, row.media_urls, row.attempts,
        row.kind, lookups=row.lookups,
    )  # fmt: skip
