"""Fan tags in `fan_tags` (bot.audience.tags): added by keyword, flow, agent or the profile (a
profile update's `tags`, and tags found on the profile alone), removed by an agent, deleted with
the fan's data. Every change also rewrites the profile's `tags` list in the
same transaction, the copy a turn reads (`fan.tags` in flow conditions, the inbox's fan card):
old data tagged on the profile alone still counts in segments (bot.storage.segment_sql).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audience.tags import normalise_tag
from bot.storage.engagement_tables import fan_tags
from bot.storage.tables import contacts

_t = fan_tags.c


def add_tags(
    conn: Connection, contact_id: int, tags: Iterable[str], source: str, at: datetime
) -> list[str]:
    """Tag the fan (a tag already held keeps its first source and time); the fan's tags."""
    new = list(dict.fromkeys(tags))
    held = set(tags_of(conn, contact_id))
    rows = [{"contact_id": contact_id, "tag": t, "source": source, "created_at": at}
            for t in new if t not in held]  # fmt: skip
    if rows:  # the fan's lock (a turn) or row lock (the inbox) keeps two adders apart
        conn.execute(_insert(conn).values(rows).on_conflict_do_nothing())
    return _mirror(conn, contact_id)


def update_profile(
    conn: Connection, contact_id: int, updates: dict[str, Any], at: datetime
) -> None:
    """Merge `updates` into the fan's profile. Tags among them (`tags`: a list) are added like
    any tag, as fan_tags rows (source `profile`), so they fire the `tagged` trigger too; names
    that are not tags (`normalise_tag`) are left out."""
    c = contacts.c
    updates = dict(updates)
    tags = updates.pop("tags", None)
    if updates:
        profile = conn.execute(sa.select(c.profile).where(c.id == contact_id)).scalar_one()
        conn.execute(
            contacts.update()
            .where(c.id == contact_id)
            .values(profile={**(profile or {}), **updates})
        )
    if tags:
        add_tags(
            conn, contact_id, _valid(tags if isinstance(tags, list) else [tags]), "profile", at
        )


def adopt_profile_tags(conn: Connection, at: datetime, contact_id: int | None = None) -> int:
    """Tags on a fan's profile alone (written before fan_tags existed, or straight into the
    table by an import) become fan_tags rows (source `profile`), so the `tagged` trigger sees
    them once; the scheduler runs this once a day (one fan's: at each of their passes)."""
    rows = conn.execute(_PROFILE_ONLY[conn.dialect.name], {"cid": contact_id}).all()
    new = [{"contact_id": cid, "tag": tag, "source": "profile", "created_at": at}
           for cid, value in rows for tag in _valid([value])]  # fmt: skip
    added = 0
    for i in range(0, len(new), 5000):
        added += len(
            conn.execute(
                _insert(conn).on_conflict_do_nothing().returning(_t.id), new[i : i + 5000]
            ).all()
        )
    return added


def _valid(values: Iterable[Any]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(normalise_tag(value))
        except ValueError:
            continue  # not a tag name: it stays on the profile, as written
    return out


# (fan, value) of each profile tag with no fan_tags row of that exact value
_PROFILE_ONLY = {
    "sqlite": sa.text(
        "SELECT c.id, j.value FROM contacts AS c, json_each(c.profile, '$.tags') AS j "
        "WHERE c.erased_at IS NULL AND (:cid IS NULL OR c.id = :cid) "
        "AND json_type(c.profile, '$.tags') = 'array' AND NOT EXISTS (SELECT 1 FROM fan_tags "
        "AS t WHERE t.contact_id = c.id AND t.tag = j.value)"
    ),
    "postgresql": sa.text(
        "SELECT c.id, j.value FROM contacts AS c CROSS JOIN LATERAL json_array_elements_text("
        "CASE WHEN json_typeof(c.profile -> 'tags') = 'array' THEN c.profile -> 'tags' "
        "ELSE '[]'::json END) AS j(value) "
        "WHERE c.erased_at IS NULL AND (CAST(:cid AS INTEGER) IS NULL OR c.id = :cid) "
        "AND NOT EXISTS (SELECT 1 FROM fan_tags AS t WHERE t.contact_id = c.id "
        "AND t.tag = j.value)"
    ),
}


def remove_tags(conn: Connection, contact_id: int, tags: Iterable[str]) -> list[str]:
    gone = list(tags)
    if gone:
        conn.execute(fan_tags.delete().where(_t.contact_id == contact_id, _t.tag.in_(gone)))
    return _mirror(conn, contact_id, frozenset(gone))


def tags_of(conn: Connection, contact_id: int) -> list[str]:
    return list(
        conn.execute(sa.select(_t.tag).where(_t.contact_id == contact_id).order_by(_t.id)).scalars()
    )


def fan_tag_rows(conn: Connection, contact_id: int) -> list[dict[str, Any]]:
    """For a data export: each tag with where and when it came from."""
    found = conn.execute(
        sa.select(_t.tag, _t.source, _t.created_at)
        .where(_t.contact_id == contact_id)
        .order_by(_t.id)
    )
    return [dict(r._mapping) for r in found]


def erase_fan_tags(conn: Connection, contact_id: int) -> None:
    conn.execute(fan_tags.delete().where(_t.contact_id == contact_id))


def _mirror(conn: Connection, contact_id: int, removed: frozenset[str] = frozenset()) -> list[str]:
    """The profile's `tags`: its old entries (tagged before fan_tags) and the rows, in order."""
    c = contacts.c
    profile = dict(conn.execute(sa.select(c.profile).where(c.id == contact_id)).scalar() or {})
    tags = [t for t in profile.get("tags", []) if t not in removed]
    tags += [t for t in tags_of(conn, contact_id) if t not in tags]
    if tags != profile.get("tags", []):
        profile["tags"] = tags
        conn.execute(contacts.update().where(c.id == contact_id).values(profile=profile))
    return tags


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(fan_tags)
