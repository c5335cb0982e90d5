"""config.yml + endpoints.yml + credentials.yml + environment -> one frozen Settings, read once.

This is the only module that reads environment variables. `${VAR}` and `${VAR:-default}` in
the YAML files are expanded from the environment, the usual way to inject secrets.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.audience.frequency import DEFAULT as DEFAULT_CAP
from bot.audience.frequency import FrequencyCap, frequency_cap_settings
from bot.audience.links import LinkSettings, link_settings
from bot.compliance.policy import Policy, compliance_settings
from bot.errors import ConfigError, Location
from bot.flows.disambiguation import Disambiguation, disambiguation_settings
from bot.pacing import RateRule, rate_rules

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    number: str | None = None
    messaging_service_sid: str | None = None
    api_base_url: str | None = None  # only for the local Twilio-compatible test server


@dataclass(frozen=True, slots=True)
class TeamHours:
    timezone: str = "America/New_York"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: str = "09:00"
    end: str = "18:00"


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """`fanline.topics:` (bot.topics.sweep); None: the vector kind's own default."""

    join_similarity: float | None = None  # cosine to a topic's centre to join it online
    group_distance: float | None = None  # cosine distance up to which new texts group
    every_s: float = 5.0  # a pass at least this often
    wake_gap_s: float = 0.5  # after a wake-up, at most this soon (a storm is one pass)


@dataclass(frozen=True, slots=True)
class Settings:
    project_dir: Path
    database_url: str
    secret_key: bytes
    public_url: str = "http://127.0.0.1:5005"
    host: str = "127.0.0.1"
    port: int = 5005
    workers: int = 1
    role: str = "all"  # fanline run --role: all, web or worker (bot.roles)
    migrate_on_start: bool = True  # off when `fanline db upgrade` is its own deployment step
    lease_ttl_s: float = 10.0  # a dead holder's singleton jobs are taken over after this
    action_endpoint: str | None = None
    action_timeout_s: float = 5.0  # a custom action's whole call (Rasa projects' may be slow)
    twilio: TwilioSettings | None = None
    reply_budget_s: float = 2.0
    ack_timeout_s: float = 10.0  # a text not committed by then gets a 503 (Twilio waits 15 s)
    max_segments: int = 3
    send_rate: float = 10.0  # messages per second per sending number (Twilio long code: ~1)
    # per sending number / Messaging Service; others by their kind (bot.pacing.DEFAULT_RATES)
    rate_limits: dict[str, RateRule] = field(default_factory=dict)
    redis_url: str | None = None  # send rates in Redis instead of the database
    team_hours: TeamHours | None = None
    # team hours an escalation of each priority waits unclaimed before the fan is told (None:
    # never); unset keys keep bot.escalation.DEFAULT_TIMEOUTS
    escalation_timeouts: dict[str, float | None] = field(default_factory=dict)
    log_json: bool = False
    reply_window_h: float = 24.0
    nlu_pipeline: str | None = None  # FANLINE_NLU_PIPELINE=default|accurate overrides config.yml
    inbox: dict[str, Any] = field(default_factory=dict)  # config.yml `inbox:`, ${VAR} expanded
    disambiguation: Disambiguation = field(default_factory=Disambiguation)
    topics: TopicSettings = field(default_factory=TopicSettings)  # `fanline.topics:`
    compliance: Policy = field(default_factory=Policy)  # `fanline.compliance:` (the phrase model)
    links: LinkSettings = field(default_factory=LinkSettings)  # `fanline.links:` (tracked links)
    # `fanline.frequency_cap:` marketing texts per fan per window (None: off)
    frequency_cap: FrequencyCap | None = DEFAULT_CAP

    @property
    def data_dir(self) -> Path:
        return self.project_dir / ".fanline"

    @property
    def model_dir(self) -> Path:
        return self.project_dir / "models"

    @property
    def local_mode(self) -> bool:
        """No Twilio credentials: replies are delivered to the web simulator instead."""
        return self.twilio is None


def load_settings(project_dir: Path | str = ".", env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    project = Path(project_dir).resolve()
    config = _read(project / "config.yml", env)
    endpoints = _read(project / "endpoints.yml", env)
    credentials = _read(project / "credentials.yml", env)
    engine = _section(config, "fanline", project / "config.yml")
    engine, overlaid = _environment(engine, env)
    inbox = _section(config, "inbox", project / "config.yml")
    inbox, overlaid_inbox = _environment(inbox, env, "FANLINE_INBOX__")
    try:
        return _settings(project, engine, endpoints, credentials, inbox, env)
    except ConfigError as exc:  # a value from the environment: name the variable, not the file
        key = (exc.location.key or "") if exc.location else ""
        named = {f"fanline.{k}": v for k, v in overlaid.items()}
        named.update({f"inbox.{k}": v for k, v in overlaid_inbox.items()})
        for name, var in named.items():
            if key == name or key.startswith(f"{name}."):
                raise ConfigError(exc.message, Location(f"environment {var}", None, key)) from exc
        raise


def _settings(
    project: Path,
    engine: dict[str, Any],
    endpoints: dict[str, Any],
    credentials: dict[str, Any],
    inbox: dict[str, Any],
    env: dict[str, str],
) -> Settings:
    db_url = env.get("FANLINE_DATABASE_URL") or _tracker_url(endpoints, project)
    action = env.get("FANLINE_ACTION_ENDPOINT") or _get(endpoints, "action_endpoint", "url")
    public = env.get("FANLINE_PUBLIC_URL") or engine.get("public_url")
    port = int(env.get("FANLINE_PORT") or engine.get("port", 5005))
    host = env.get("FANLINE_HOST") or engine.get("host", "127.0.0.1")
    where = project / "config.yml"
    return Settings(
        project_dir=project,
        database_url=db_url,
        secret_key=_secret_key(env, project),
        public_url=(public or f"http://{host}:{port}").rstrip("/"),
        host=host,
        port=port,
        workers=int(env.get("FANLINE_WORKERS") or engine.get("workers", 1)),
        role=str(engine.get("role", "all")),
        migrate_on_start=_flag(engine, "migrate_on_start", True, where),
        lease_ttl_s=_number(engine, "lease_ttl_s", 10, where),
        action_endpoint=action or None,
        action_timeout_s=_number(engine, "action_timeout_ms", 5000, where) / 1000,
        twilio=_twilio(credentials, env),
        reply_budget_s=_number(engine, "reply_budget_ms", 2000, where) / 1000,
        ack_timeout_s=_number(engine, "ack_timeout_ms", 10000, where) / 1000,
        max_segments=int(_number(engine, "max_sms_segments", 3, where)),
        send_rate=_number(engine, "send_rate_per_second", 10, where),
        rate_limits=rate_rules(
            engine.get("rate_limits"), str(where), engine["__lines__"].get("rate_limits")
        ),
        redis_url=_redis_url(engine.get("redis_url"), where, engine["__lines__"].get("redis_url")),
        team_hours=_team_hours(engine.get("team_hours"), where),
        escalation_timeouts=_timeouts(engine, where),
        log_json=(env.get("FANLINE_LOG_FORMAT") or engine.get("log_format", "text")) == "json",
        reply_window_h=_number(engine, "broadcast_reply_window_hours", 24, where),
        nlu_pipeline=env.get("FANLINE_NLU_PIPELINE") or None,
        inbox={k: v for k, v in inbox.items() if k != "__lines__"},
        disambiguation=disambiguation_settings(engine.get("disambiguation"), str(where)),
        topics=_topics(engine, where),
        compliance=compliance_settings(
            engine.get("compliance"), str(where), engine["__lines__"].get("compliance")
        ),
        links=link_settings(engine.get("links"), str(where), engine["__lines__"].get("links")),
        frequency_cap=frequency_cap_settings(
            engine.get("frequency_cap"), str(where), engine["__lines__"].get("frequency_cap")
        ),
    )


def _environment(
    section: dict[str, Any], env: dict[str, str], prefix: str = "FANLINE_"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every key of `fanline:` (or `inbox:`) from the environment: FANLINE_REPLY_BUDGET_MS=800,
    and one key of a mapping with a double underscore: FANLINE_TOPICS__EVERY_S=3. Values are
    YAML (numbers, true/false, [lists], {mappings}). Returns the section and, per key set, the
    variable that set it (errors name it)."""
    out = dict(section)
    overlaid: dict[str, str] = {}
    for var in sorted(env):
        if not var.startswith(prefix) or var.startswith("FANLINE_TEST_"):
            continue
        if prefix == "FANLINE_" and var.startswith("FANLINE_INBOX__"):
            continue
        path = var[len(prefix) :].lower().split("__")
        if not all(path):
            continue
        value = _env_value(env[var])
        if len(path) == 1:
            out[path[0]] = value
        else:
            inner = out.get(path[0])
            nested = type(inner)() if isinstance(inner, dict) else {}
            if isinstance(inner, dict):
                nested.update(inner)
                if hasattr(inner, "key_lines"):
                    nested.key_lines = inner.key_lines  # type: ignore[attr-defined]
            nested[path[1]] = value
            out[path[0]] = nested
        overlaid[".".join(path)] = var
    return out, overlaid


def _env_value(raw: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if value is None or (isinstance(value, int) and ":" in raw):  # "09:00" is a time, not 540
        return raw
    return value


def _flag(section: dict[str, Any], key: str, default: bool, path: Path) -> bool:
    value = section.get(key, default)
    if isinstance(value, str) and value.lower() in ("0", "1", "yes", "no", "on", "off"):
        return value.lower() in ("1", "yes", "on")
    if not isinstance(value, bool | int) or value not in (0, 1):
        line = section.get("__lines__", {}).get(key)
        raise ConfigError(f"must be true or false, got {value!r}",
                          Location(str(path), line, f"fanline.{key}"))  # fmt: skip
    return bool(value)


def _read(path: Path, env: dict[str, str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    from bot.flows.loader import read_yaml

    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", Location(str(path), 1))
    return _expand(data, env)


def _expand(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        out = type(value)()
        out.update({k: _expand(v, env) for k, v in value.items()})
        for attr in ("line", "key_lines"):
            if hasattr(value, attr):
                setattr(out, attr, getattr(value, attr))
        return out
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    return value


def _section(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", _loc(data, key, path))
    value = dict(value)
    value["__lines__"] = getattr(data.get(key), "key_lines", {})
    return value


def _loc(data: Any, key: str, path: Path) -> Location:
    return Location(str(path), getattr(data, "key_lines", {}).get(key), key)


def _number(section: dict[str, Any], key: str, default: float, path: Path) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        line = section.get("__lines__", {}).get(key)
        raise ConfigError(
            f"must be a non-negative number, got {value!r}",
            Location(str(path), line, f"fanline.{key}"),
        )
    return float(value)


def _redis_url(value: Any, path: Path, line: int | None) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"must be a redis://, rediss:// or unix:// URL, got {value!r}",
                          Location(str(path), line, "fanline.redis_url"))  # fmt: skip
    return value


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _tracker_url(endpoints: dict[str, Any], project: Path) -> str:
    url = _get(endpoints, "tracker_store", "url")
    if url:
        return str(url)
    return f"sqlite:///{project / '.fanline' / 'fanline.db'}"


def _twilio(credentials: dict[str, Any], env: dict[str, str]) -> TwilioSettings | None:
    section = credentials.get("twilio") or {}
    sid = env.get("TWILIO_ACCOUNT_SID") or section.get("account_sid")
    token = env.get("TWILIO_AUTH_TOKEN") or section.get("auth_token")
    if not sid or not token:
        return None
    return TwilioSettings(
        account_sid=sid,
        auth_token=token,
        number=env.get("TWILIO_NUMBER") or section.get("twilio_number") or None,
        messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID")
        or section.get("messaging_service_sid")
        or None,
        api_base_url=env.get("TWILIO_API_BASE_URL") or section.get("api_base_url") or None,
    )


def _team_hours(value: Any, path: Path) -> TeamHours | None:
    if not value:
        return None
    days = value.get("days", [0, 1, 2, 3, 4])
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    try:
        parsed = tuple(d if isinstance(d, int) else names.index(str(d)[:3].lower()) for d in days)
    except ValueError as exc:
        raise ConfigError(
            f"unknown day in {days!r}", Location(str(path), None, "fanline.team_hours.days")
        ) from exc
    return TeamHours(
        timezone=value.get("timezone", "America/New_York"),
        days=parsed,
        start=str(value.get("start", "09:00")),
        end=str(value.get("end", "18:00")),
    )


def _timeouts(engine: dict[str, Any], path: Path) -> dict[str, float | None]:
    """`escalation_timeouts: {urgent: 1, high: 4, normal: 8, low: never}` (team hours)."""
    value = engine.get("escalation_timeouts")
    if value is None:
        return {}
    line = engine.get("__lines__", {}).get("escalation_timeouts")
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping of priority to team hours",
                          Location(str(path), line, "fanline.escalation_timeouts"))  # fmt: skip
    lines = getattr(value, "key_lines", {})
    out: dict[str, float | None] = {}
    for key, hours in value.items():
        where = Location(str(path), lines.get(key, line), f"fanline.escalation_timeouts.{key}")
        if key not in ("urgent", "high", "normal", "low"):
            raise ConfigError("unknown priority: use urgent, high, normal or low", where)
        if hours is None or hours == "never":
            out[key] = None
        elif isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise ConfigError(f"must be a positive number of team hours or never, got {hours!r}",
                              where)  # fmt: skip
        else:
            out[key] = float(hours)
    return out


def _topics(engine: dict[str, Any], path: Path) -> TopicSettings:
    """`topics: {join_similarity: 0.7, group_distance: 0.35, every_s: 5}` (all optional)."""
    value = engine.get("topics")
    if value is None:
        return TopicSettings()
    line = engine.get("__lines__", {}).get("topics")
    if not isinstance(value, dict):
        raise ConfigError("expected a mapping", Location(str(path), line, "fanline.topics"))
    lines = getattr(value, "key_lines", {})
    ranges = {"join_similarity": (0.0, 1.0), "group_distance": (0.0, 2.0),
              "every_s": (0.0, 3600.0)}  # fmt: skip
    out: dict[str, float] = {}
    for key, number in value.items():
        where = Location(str(path), lines.get(key, line), f"fanline.topics.{key}")
        if key not in ranges:
            raise ConfigError(f"unknown setting: use {', '.join(ranges)}", where)
        low, high = ranges[key]
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not low < number <= high
        ):
            raise ConfigError(f"must be a number above {low:g} and at most {high:g}, got {number!r}",
                              where)  # fmt: skip
        out[key] = float(number)
    return TopicSettings(**out)


def _secret_key(env: dict[str, str], project: Path) -> bytes:
    """Signs cookies and links and keys the phone-number hashes; made once and kept if unset."""
    if env.get("FANLINE_SECRET_KEY"):
        return env["FANLINE_SECRET_KEY"].encode()
    path = project / ".fanline" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()
