"""The agent inbox: where escalated fans reach a person (queue, threads, live feed, JSON API).

The pipeline hands a thread to humans by opening an escalation; `LiveHub.publish_outcome`,
hooked to the pipeline's `on_commit`, announces it; agents answer through `queue`'s service
functions, and their replies leave through the same outbox as the bot's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

# the web parts (sanic, the API, the NLU through settings) are imported when an app mounts the
# inbox, not with the package: `fanline agents --help` imports bot.inbox.cli and must stay fast
if TYPE_CHECKING:
    from sanic import Blueprint

    from bot.audience.broadcasts import BroadcastService
    from bot.inbox.config import InboxConfig
    from bot.inbox.live import LiveHub
    from bot.settings import Settings
    from bot.storage import Database

__all__ = ["LiveHub", "build_hub", "inbox_blueprints"]
T = TypeVar("T")


def __getattr__(name: str) -> Any:
    if name == "LiveHub":
        from bot.inbox.live import LiveHub

        return LiveHub
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Deferred:
    """The runtime's database, looked up at each call: blueprints are mounted before it exists."""

    def __init__(self, get: Callable[[], Database]):
        self._get = get

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._get().run(fn, *args)


def build_hub(settings: Settings, config: InboxConfig | None = None) -> LiveHub:
    """A hub with the configured escalation webhook, if any (`inbox.webhook_url`): on
    PostgreSQL one that carries events between processes (LISTEN only where agents connect)."""
    from bot.inbox.config import load_inbox_config
    from bot.inbox.live import LiveHub, PgLiveHub, Webhook, libpq_dsn
    from bot.roles import serves_fans
    from bot.storage.db import normalise_url

    config = config or load_inbox_config(settings.project_dir, settings.inbox)
    webhook = None
    if config.webhook_url and config.webhook_secret:
        webhook = Webhook(config.webhook_url, config.webhook_secret)
    if normalise_url(settings.database_url).startswith("postgresql"):
        return PgLiveHub(libpq_dsn(settings.database_url), listen=serves_fans(settings.role),
                         webhook=webhook, inbox_url=settings.public_url)  # fmt: skip
    return LiveHub(webhook=webhook, inbox_url=settings.public_url)


def inbox_blueprints(
    *,
    db: Database | Callable[[], Database],
    settings: Settings,
    hub: LiveHub,
    notify_outbox: Callable[[], None],
    config: InboxConfig | None = None,
    broadcasts: Callable[[], BroadcastService] | None = None,
    runtime: Callable[[], Any] | None = None,
    sweep: Callable[[], Any] | None = None,
    teacher: Callable[[], Any] | None = None,
) -> list[Blueprint]:
    """The inbox pages (/inbox) and its JSON API (/api/v1), sharing one set of rules.

    `db` may be a callable returning the database, for apps that open it at server start;
    `broadcasts` likewise the broadcast service (default: one over that database);
    `runtime`, `sweep` and `teacher` return the running fan line's runtime, topic sweep and
    teacher (or None) for the topics and teach routes.
    """
    from bot.inbox.api import api_blueprint
    from bot.inbox.auth import Auth
    from bot.inbox.broadcasts import service_for
    from bot.inbox.config import load_inbox_config
    from bot.inbox.views import views_blueprint
    from bot.inbox.web import Inbox
    from bot.storage import Database

    config = config or load_inbox_config(settings.project_dir, settings.inbox)
    get_db = (lambda: db) if isinstance(db, Database) else db
    if broadcasts is None:
        broadcasts = service_for(get_db, settings)
    if not isinstance(db, Database):
        db = _Deferred(db)  # type: ignore[assignment]
    inbox = Inbox(
        db=db,
        auth=Auth(db, settings.secret_key, session_hours=config.session_hours),
        hub=hub,
        config=config,
        notify_outbox=notify_outbox,
        secure_cookies=settings.public_url.startswith("https://"),
        broadcasts=broadcasts,
        **{k: f for k, f in (("runtime", runtime), ("sweep", sweep), ("teacher", teacher)) if f},
    )
    return [views_blueprint(inbox), api_blueprint(inbox)]
