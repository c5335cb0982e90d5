"""Everything a running fan line needs, built once from Settings: store, content, model, pipeline.

Shared by the server (`bot.app`), the shell, conversation tests and benchmarks, so they all run
the very same pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import compliance
from bot.actions import ActionRunner
from bot.compliance import line as compliance_line
from bot.content import Content, load_content
from bot.errors import ModelOutdated, NluError
from bot.escalation import DEFAULT_TIMEOUTS, EscalationPolicy, TeamClock
from bot.flows import FlowEngine
from bot.locks import ContactLocks
from bot.pipeline import Pipeline, TurnOutcome
from bot.settings import Settings
from bot.storage import Store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    locks: ContactLocks
    content: Content
    interpreter: Any
    actions: ActionRunner
    pipeline: Pipeline

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        train: bool = True,
        on_commit: Any = None,
        database_url: str | None = None,
    ) -> Runtime:
        actions = ActionRunner(
            package=None if settings.action_endpoint else _actions_package(settings.project_dir),
            endpoint_url=settings.action_endpoint,
            timeout_s=settings.action_timeout_s,
        )
        known = actions.known_actions() or None
        content = load_content(
            settings.project_dir, actions=known, max_segments=settings.max_segments
        )
        if content.domain.forms:  # Rasa forms: validate_<form> actions read required_slots
            actions.use_forms(content.domain.forms)
        interpreter = await asyncio.to_thread(ensure_model, settings, content, train)
        phrases = await asyncio.to_thread(line_phrases, content, interpreter)
        await asyncio.to_thread(compliance.warm_up)  # the language model, before the first text
        url = database_url or settings.database_url
        # several processes: `fanline db upgrade` is its own step and start-up leaves the schema
        migrate = settings.migrate_on_start or database_url is not None
        store = await asyncio.to_thread(
            Store.open, url, hash_key=settings.secret_key, migrate=migrate,
            reply_window_h=settings.reply_window_h,
        )  # fmt: skip
        store.frequency_cap = settings.frequency_cap  # checked at the outbox's claim
        pg = store.db.engine.dialect.name == "postgresql"
        locks = ContactLocks(_libpq_dsn(store.db.engine.url) if pg else None)
        pipeline = Pipeline(
            store=store,
            locks=locks,
            engine=build_engine(content, interpreter, settings),
            interpreter=interpreter,
            actions=actions,
            on_commit=on_commit or (lambda outcome: None),
            escalations=escalation_policy(settings),
            fan_links=_links(settings),
            max_segments=settings.max_segments,
            phrases=phrases,
            compliance_policy=settings.compliance,
        )
        return cls(settings, store, locks, content, interpreter, actions, pipeline)

    async def handle(self, msg: Any, **kw: Any) -> TurnOutcome:
        return await self.pipeline.handle_inbound(msg, **kw)

    async def close(self) -> None:
        await self.actions.aclose()
        await self.locks.aclose()
        await asyncio.to_thread(self.store.close)


def build_engine(
    content: Content, interpreter: Any, settings: Settings | None = None
) -> FlowEngine:
    threshold = float(getattr(interpreter, "threshold", 0.5) or 0.5)
    return FlowEngine(
        content.flows, content.domain, default_threshold=threshold, reactions=content.reactions,
        disambiguation=settings.disambiguation if settings else None,
    )  # fmt: skip


def ensure_model(settings: Settings, content: Content, train: bool = True) -> Any:
    """The NLU model for this content and config, trained first when missing or stale.

    With `train=False` (the server's hot reload) it only loads a model `fanline train` already
    made for exactly this data and config, or raises NluError: a server never trains.
    """
    from bot.nlu import load_interpreter
    from bot.nlu import train as train_model
    from bot.nlu.config import project_config
    from bot.nlu.model import model_dir_for
    from bot.nlu.train import fingerprint

    config = project_config(settings.project_dir / "config.yml", settings.nlu_pipeline)
    if content.nlu_data is None:
        raise NluError("no NLU training data under data/")
    from bot.rasa.nlu_server import with_rasa_nlu  # `nlu:` in endpoints.yml: a Rasa server

    if train:
        # the line's phrase model beside it, published with it (and added to a reused one)
        model_dir = train_model(config, content.nlu_data, settings.model_dir, progress=False,
                                beside=lambda d: compliance_line.ensure(content.nlu_data, d))  # fmt: skip
        compliance_line.ensure(content.nlu_data, model_dir)
        return with_rasa_nlu(settings.project_dir, load_interpreter(model_dir))
    model_dir = model_dir_for(settings.model_dir, fingerprint(config, content.nlu_data))
    if not (model_dir / "metadata.json").is_file():
        raise ModelOutdated("NLU data or config changed: run `fanline train` to update the model")
    return with_rasa_nlu(settings.project_dir, load_interpreter(model_dir))


def line_phrases(content: Content, interpreter: Any) -> Any:
    """The line's compliance phrase model: saved beside the NLU model, else trained now."""
    return compliance_line.load_or_train(content.nlu_data, getattr(interpreter, "model_dir", None))


def _links(settings: Settings) -> Any:
    from bot.audience.signup import SignupLinks

    signup = SignupLinks(settings)
    return lambda contact_id: {"signup_link": LazyText(lambda: signup(contact_id))}


class LazyText:
    """A fan field worked out when a text first shows it (`str()`): the signed signup link is
    offered in few replies, and signing one (JSON, zlib, HMAC) was work on every turn."""

    __slots__ = ("_make", "_text")

    def __init__(self, make: Any) -> None:
        self._make = make
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._make()
        return self._text

    def __eq__(self, other: object) -> bool:
        return str(self) == (str(other) if isinstance(other, LazyText) else other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return repr(str(self))


def escalation_policy(settings: Settings) -> EscalationPolicy:
    """Team hours and, per priority, how long an escalation may wait for a person."""
    return EscalationPolicy(
        TeamClock(settings.team_hours), {**DEFAULT_TIMEOUTS, **settings.escalation_timeouts}
    )


def _actions_package(project_dir: Path) -> str | None:
    if (project_dir / "actions" / "__init__.py").exists():
        import sys

        if str(project_dir) not in sys.path:
            sys.path.insert(0, str(project_dir))
        return "actions"
    return None


def _libpq_dsn(url: Any) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
