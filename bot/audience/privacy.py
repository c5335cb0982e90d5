"""Data rights: everything held about a fan, as JSON; erasure that keeps only the opt-out.

Off the message path; `fanline fans export|erase NUMBER` and the inbox call these. The phone
number is normalised to E.164 first, so "+1 (415) 555-0100" finds the fan stored as +14155550100.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Any

import phonenumbers

from bot.errors import BadRequest
from bot.locks import ContactLocks
from bot.storage import Store
from bot.storage.fan_records import FanRecords


def normalise_phone(raw: str, region: str = "US") -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise BadRequest("not a phone number") from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadRequest("not a phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def export_fan(store: Store, phone: str) -> dict[str, Any]:
    """Contact, profile, consent history, conversation, messages, events, escalations."""
    data = await FanRecords(store).export(normalise_phone(phone))
    return json.loads(json.dumps(data, default=_json))


async def erase_fan(store: Store, phone: str, locks: ContactLocks | None = None) -> int:
    """Erase personal data and message bodies; keep a keyed hash so the opt-out survives.

    Returns the (now anonymous) contact id. Queued texts to the fan are cancelled. On SQLite
    the erased values are then gone from the files too (`Database.forget`).

    Erasure takes the fan's lock (the server's `locks`, or an advisory lock of its own on
    PostgreSQL, as the CLI does): a turn in flight finishes first and is erased with the rest,
    and a turn that runs on regardless (another SQLite process) finds the fan erased and keeps
    nothing (`Store.finish_turn`).
    """
    number = normalise_phone(phone)
    own = locks is None
    fan_locks = locks or ContactLocks(_advisory_dsn(store))
    try:
        async with fan_locks.hold(number):
            contact_id = await FanRecords(store).erase(number)
    finally:
        if own:
            await fan_locks.aclose()
    await asyncio.to_thread(store.db.forget)
    return contact_id


def _advisory_dsn(store: Store) -> str | None:
    """The libpq DSN for the fan's advisory lock on PostgreSQL (None: SQLite, in-process)."""
    url = store.db.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
