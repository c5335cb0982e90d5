"""Tracked links' units of work: write a chunk's short links, resolve a code and count its click.

A broadcast chunk's texts are rewritten in the chunk's own transaction (`shorten_messages`), so
a text is never queued with its long URL and never gets two codes. A click is one statement
pair on the redirect's path: the code's row by its unique index, then an upsert of the
(link, kind) click row (the first click's time kept, repeats counted).
"""

from __future__ import annotations

import asyncio
import queue
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.audience.links import find_urls, new_code, rewrite, with_utm
from bot.errors import StorageError
from bot.storage.db import Database
from bot.storage.engagement_tables import link_clicks, links
from bot.storage.tables import messages


@dataclass(frozen=True, slots=True)
class ChunkLinks:
    """What a broadcast chunk's URLs become: the template's URLs, with UTM tags."""

    base: str  # https://nova.fm/l/
    targets: dict[str, str]  # URL as written -> URL redirected to (UTM tags added)
    broadcast_id: int | None = None


def chunk_links(
    body: str, base: str, utm: dict[str, str], values: dict[str, str], broadcast_id: int
) -> ChunkLinks:
    return ChunkLinks(base, {u: with_utm(u, utm, values) for u in find_urls(body)}, broadcast_id)


def shorten_messages(
    conn: Connection, spec: ChunkLinks, after_id: int, variant_id: int | None = None
) -> int:
    """Rewrite the URLs of the broadcast's texts written after message `after_id` (this chunk),
    one code per text and URL; returns links written."""
    if not spec.targets:
        return 0
    m = messages.c
    rows = conn.execute(
        sa.select(m.id, m.contact_id, m.body).where(
            m.broadcast_id == spec.broadcast_id, m.kind == "broadcast", m.id > after_id
        )
    ).all()
    at = datetime.now(UTC)
    new_links: list[dict[str, Any]] = []
    bodies: list[dict[str, Any]] = []
    for row in rows:

        def short(url: str, row: Any = row) -> str:
            code = new_code()
            new_links.append({"code": code, "url": spec.targets[url], "message_id": row.id,
                              "contact_id": row.contact_id, "broadcast_id": spec.broadcast_id,
                              "variant_id": variant_id, "flow": None, "created_at": at})  # fmt: skip
            return spec.base + code

        bodies.append({"mid": row.id, "new_body": rewrite(row.body, list(spec.targets), short)})
    if new_links:
        conn.execute(links.insert(), new_links)
        conn.execute(
            messages.update()
            .where(m.id == sa.bindparam("mid"))
            .values(body=sa.bindparam("new_body")),
            bodies,
        )
    return len(new_links)


def shorten_text(
    conn: Connection,
    text: str,
    *,
    base: str,
    utm: dict[str, str],
    contact_id: int,
    flow: str | None = None,
    message_id: int | None = None,
) -> str:
    """One text to one fan (a timed flow's or a response's, when `fanline.links.
    track_responses` is on) with its URLs as short links of its own; in the caller's
    transaction, before the text is queued. UTM `{broadcast}` is the flow's id here."""
    urls = find_urls(text)
    if not urls:
        return text
    at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []

    def short(url: str) -> str:
        code = new_code()
        rows.append({"code": code, "url": with_utm(url, utm, {"broadcast": flow or ""}),
                     "message_id": message_id, "contact_id": contact_id, "broadcast_id": None,
                     "variant_id": None, "flow": flow, "created_at": at})  # fmt: skip
        return base + code

    out = rewrite(text, urls, short)
    conn.execute(links.insert(), rows)
    return out


def last_message_id(conn: Connection) -> int:
    return int(
        conn.execute(sa.select(sa.func.coalesce(sa.func.max(messages.c.id), 0))).scalar_one()
    )


class LinkStore:
    """The redirect's storage: a code's target by its unique index; clicks written in batches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        b = sa.bindparam
        self._find = sa.select(links.c.id, links.c.url, links.c.contact_id).where(
            links.c.code == b("code")
        )
        stmt = insert(link_clicks).values(
            link_id=b("link_id"), contact_id=b("contact_id"), first_at=b("at"), clicks=b("n"),
            agent_kind=b("kind"),
        )  # fmt: skip
        self._click = stmt.on_conflict_do_update(
            index_elements=["link_id", "agent_kind"],
            set_={"clicks": link_clicks.c.clicks + stmt.excluded.clicks},
        )

    async def find(self, code: str) -> Link | None:
        if self.db.is_sqlite:
            # one read by a unique index of a WAL database never waits for the writer: it is
            # answered on the loop, without the hop to the writer thread and its queue (which
            # cost the redirect more than the read itself)
            with self.db.engine.connect() as conn:
                return self._found(conn, code)
        return await asyncio.to_thread(self._read, code)

    def _read(self, code: str) -> Link | None:
        """PostgreSQL: the read alone on a kept autocommit connection (a unit of work's
        checkout ping, BEGIN and COMMIT were three of its four round trips)."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            found = self._found(conn, code)
        except sa.exc.DBAPIError as exc:
            conn.invalidate()  # a dropped connection is not kept
            conn.close()
            raise StorageError(f"database unavailable: {exc.orig.__class__.__name__}") from exc
        self._idle.put(conn)
        return found

    def _found(self, conn: Connection, code: str) -> Link | None:
        row = conn.execute(self._find, {"code": code}).first()
        return None if row is None else Link(row.id, str(row.url), row.contact_id)

    async def click(self, code: str, kind: str) -> str | None:
        """The stored URL of `code` (None: no such code), its click recorded as `kind` at once
        (tests and tools; the redirect batches them through `ClickLog`)."""
        link = await self.db.run(self._found, code)
        if link is not None:
            await self.record([Click(link.id, link.contact_id, kind, datetime.now(UTC), 1)])
        return None if link is None else link.url

    def close(self) -> None:
        """Close the kept read connections (the server's stop)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    async def record(self, clicks: list[Click]) -> None:
        """Upsert click rows: a new (link, kind) keeps its first time, a repeat adds its count."""
        if clicks:
            rows = [{"link_id": c.link_id, "contact_id": c.contact_id, "at": c.at, "n": c.count,
                     "kind": c.kind} for c in clicks]  # fmt: skip
            await self.db.run(lambda conn: conn.execute(self._click, rows))


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    url: str
    contact_id: int | None


@dataclass(frozen=True, slots=True)
class Click:
    link_id: int
    contact_id: int | None
    kind: str
    at: datetime
    count: int


def fan_link_rows(conn: Connection, contact_id: int) -> list[dict[str, Any]]:
    """Data rights: the fan's short links (URL, code, broadcast or flow) and their clicks."""
    found = conn.execute(
        sa.select(links.c.code, links.c.url, links.c.broadcast_id, links.c.flow,
                  links.c.created_at, link_clicks.c.agent_kind, link_clicks.c.first_at,
                  link_clicks.c.clicks)
        .select_from(links.outerjoin(link_clicks, link_clicks.c.link_id == links.c.id))
        .where(links.c.contact_id == contact_id)
        .order_by(links.c.id)
    )  # fmt: skip
    return [dict(r._mapping) for r in found]


def erase_fan_links(conn: Connection, contact_id: int) -> None:
    """Erasure: the fan's links and clicks stay as counts, no longer tied to them."""
    conn.execute(links.update().where(links.c.contact_id == contact_id).values(contact_id=None))
    conn.execute(
        link_clicks.update().where(link_clicks.c.contact_id == contact_id).values(contact_id=None)
    )
