"""Texts a crash left `received`: answered at start-up, then by a periodic pass.

Where it sits: beside the webhook, feeding the same `Pipeline`. A text is committed before it
is acknowledged; if the process dies before the text's turn commits, it stays `received`, and
without this pass it would wait for the fan's next text. Each fan's texts are answered under
the fan's lock (an advisory lock across processes on PostgreSQL), which re-reads what is still
unanswered, so several workers running this pass at once never answer a text twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from bot.messages import utcnow

log = logging.getLogger(__name__)
EVERY_S = 30.0
GRACE_S = 30.0  # the periodic pass leaves recent texts to the turns answering them right now


async def answer_unanswered(pipeline: Any, *, older_than_s: float = 0.0, limit: int = 500) -> int:
    """Answer the texts left `received` before now - `older_than_s`; how many were answered."""
    before = utcnow() - timedelta(seconds=older_than_s)
    answered = 0
    for contact_id, phone in await pipeline.store.unanswered_fans(before, limit):
        try:
            answered += await pipeline.answer_unanswered(contact_id, phone)
        except Exception:  # one fan's failure must not starve the others; retried next pass
            log.exception(
                "could not answer a text left unanswered", extra={"contact_id": contact_id}
            )
    if answered:
        log.info("answered %d text(s) left unanswered by a crash", answered)
    return answered


async def run(
    pipeline: Any,
    stop: asyncio.Event,
    *,
    every_s: float = EVERY_S,
    grace_s: float = GRACE_S,
    first_older_than_s: float = 0.0,
) -> None:
    """At start-up what is older than `first_older_than_s` (one process alone: everything left
    unanswered), then every `every_s` what is older than `grace_s`."""
    older_than = first_older_than_s
    while not stop.is_set():
        try:
            await answer_unanswered(pipeline, older_than_s=older_than)
        except Exception:  # a background task's top: the database may be back next time
            log.exception("the unanswered-texts pass failed")
        older_than = grace_s
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            continue
