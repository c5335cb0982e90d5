"""Compiles a `bot.audience.segments.Segment` into one SQL condition over `contacts` (SQLite and PostgreSQL).

Fans are filtered by the database, never in Python: a preview count or a million-fan broadcast
is one statement. Profile fields are read from the JSON `profile` column, tags from `fan_tags`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.audience.quiet_hours import ZIP3_STATES
from bot.audience.segments import Segment
from bot.storage.engagement_tables import fan_tags, link_clicks, links
from bot.storage.tables import contacts


def field(name: str) -> Any:
    """A profile field as text (NULL when missing)."""
    return contacts.c.profile[name].as_string()


def zip3() -> Any:
    return sa.func.substr(field("zip"), 1, 3)


def segment_condition(segment: Segment, dialect: str, now: datetime | None = None) -> Any:
    now = now or datetime.now(UTC)
    conds: list[Any] = [contacts.c.subscription == "subscribed", contacts.c.phone.is_not(None)]
    conds += [_has_tag(t, dialect) for t in segment.tags]
    if segment.any_tags:
        conds.append(sa.or_(*(_has_tag(t, dialect) for t in segment.any_tags)))
    conds += [sa.not_(_has_tag(t, dialect)) for t in segment.not_tags]
    for name, values in segment.profile:
        conds.append(field(name).in_(list(values)))
    if segment.zip_prefix:
        conds.append(
            sa.or_(*(sa.func.substr(field("zip"), 1, len(p)) == p for p in segment.zip_prefix))
        )
    if segment.state:
        conds.append(_in_states(segment.state))
    if segment.country:
        conds.append(_in_countries(segment.country))
    if segment.birthday_month:
        months = [f"{m:02d}" for m in segment.birthday_month]
        conds.append(sa.func.substr(field("birthday"), 6, 2).in_(months))
    if segment.signed_up_after:
        start = datetime.combine(segment.signed_up_after, datetime.min.time(), tzinfo=UTC)
        conds.append(contacts.c.subscribed_at >= start)
    if segment.signed_up_before:
        end = datetime.combine(segment.signed_up_before, datetime.min.time(), tzinfo=UTC)
        conds.append(contacts.c.subscribed_at < end)
    if segment.replied_within_days:
        since = now - timedelta(days=segment.replied_within_days)
        conds.append(contacts.c.last_inbound_at >= since)
    if segment.clicked is not None:
        conds.append(_clicked(segment.clicked))
    return sa.and_(*conds)


def _clicked(broadcast_id: int) -> Any:
    """A person (not a link preview or a bot) tapped one of the fan's links of the broadcast."""
    return sa.exists().where(
        links.c.contact_id == contacts.c.id,
        links.c.broadcast_id == broadcast_id,
        link_clicks.c.link_id == links.c.id,
        link_clicks.c.agent_kind == "human",
    )


def _has_tag(tag: str, dialect: str) -> Any:
    """A row in fan_tags (keywords, flows, agents), or the tag on the profile alone (fans
    tagged before fan_tags existed, and profile imports)."""
    row = sa.exists().where(fan_tags.c.contact_id == contacts.c.id, fan_tags.c.tag == tag)
    return sa.or_(row, _profile_tag(tag, dialect))


def _profile_tag(tag: str, dialect: str) -> Any:
    if dialect == "postgresql":
        # profile is `json`; the jsonb containment test reads the array without unnesting it
        tags = sa.cast(contacts.c.profile["tags"], sa.dialects.postgresql.JSONB)
        return sa.func.coalesce(tags.contains([tag]), sa.false())
    each = sa.func.json_each(contacts.c.profile, "$.tags").table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == tag))


def _in_states(states: tuple[str, ...]) -> Any:
    # "TX-W" (El Paso, Mountain time) is still Texas
    ranges = [(lo, hi) for lo, hi, st in ZIP3_STATES if st.split("-")[0] in states]
    z = zip3()
    return sa.or_(*(z.between(f"{lo:03d}", f"{hi:03d}") for lo, hi in ranges)) & (
        sa.func.length(field("zip")) >= 5
    )


def _in_countries(countries: tuple[str, ...]) -> Any:
    country = sa.func.upper(field("country"))
    us_zip = sa.and_(country.is_(None), sa.func.length(field("zip")) >= 5, zip3() >= "005")
    if "US" in countries:
        return sa.or_(country.in_(list(countries)), us_zip)
    return country.in_(list(countries))
