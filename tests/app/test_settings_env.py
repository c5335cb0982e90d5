"""Every engine setting can come from the environment (FANLINE_...), for deployments that
configure processes by environment (systemd, Procfile, containers); errors name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import settings as settings_module
from bot.errors import ConfigError
from bot.settings import load_settings
from tests.conftest import ROOT

BASE = {"FANLINE_SECRET_KEY": "test", "FANLINE_DATABASE_URL": "sqlite:///x.db"}

# every key of `fanline:` in config.yml -> (an environment value, what Settings then holds)
CASES = {
    "public_url": (
        "https://fans.example.com",
        lambda s: s.public_url == "https://fans.example.com",
    ),
    "host": ("0.0.0.0", lambda s: s.host == "0.0.0.0"),
    "port": ("8080", lambda s: s.port == 8080),
    "workers": ("3", lambda s: s.workers == 3),
    "role": ("worker", lambda s: s.role == "worker"),
    "migrate_on_start": ("false", lambda s: s.migrate_on_start is False),
    "lease_ttl_s": ("4", lambda s: s.lease_ttl_s == 4.0),
    "reply_budget_ms": ("800", lambda s: s.reply_budget_s == 0.8),
    "ack_timeout_ms": ("5000", lambda s: s.ack_timeout_s == 5.0),
    "action_timeout_ms": ("30000", lambda s: s.action_timeout_s == 30.0),
    "max_sms_segments": ("2", lambda s: s.max_segments == 2),
    "send_rate_per_second": ("1", lambda s: s.send_rate == 1.0),
    "rate_limits": ("{'+15550001111': 3}", lambda s: "+15550001111" in s.rate_limits),
    "redis_url": ("redis://127.0.0.1:6379/2", lambda s: s.redis_url == "redis://127.0.0.1:6379/2"),
    "team_hours": (
        "{timezone: Europe/Paris, days: [sat, sun], start: '10:00', end: '16:00'}",
        lambda s: s.team_hours.timezone == "Europe/Paris" and s.team_hours.days == (5, 6),
    ),
    "escalation_timeouts": (
        "{urgent: 2, low: never}",
        lambda s: s.escalation_timeouts == {"urgent": 2.0, "low": None},
    ),  # fmt: skip
    "log_format": ("json", lambda s: s.log_json is True),
    "broadcast_reply_window_hours": ("6", lambda s: s.reply_window_h == 6.0),
    "disambiguation": ("{enabled: false}", lambda s: s.disambiguation.enabled is False),
    "topics": ("{every_s: 2}", lambda s: s.topics.every_s == 2.0),
    "compliance": ("{phrase_model: false}", lambda s: s.compliance.phrase_model is False),
    "frequency_cap": ("{texts: 2, per: 8h}", lambda s: s.frequency_cap.texts == 2),
    "links": ("{domain: nova.fm}", lambda s: s.links.base("x") == "https://nova.fm/l/"),
}


def _keys_read_by_settings() -> set[str]:
    """The `fanline:` keys bot/settings.py reads: a new key without a case here fails."""
    source = Path(settings_module.__file__).read_text()
    found = set(re.findall(r'engine(?:\.get\(|\[)"([a-z_]+)"', source))
    found |= set(re.findall(r'_(?:number|flag)\(\s*engine, "([a-z_]+)"', source))
    return found - {"__lines__"}


def test_every_key_of_the_engine_section_is_covered() -> None:
    assert _keys_read_by_settings() <= set(CASES), _keys_read_by_settings() - set(CASES)


@pytest.mark.parametrize("key", sorted(CASES))
def test_each_key_from_the_environment(key: str) -> None:
    value, holds = CASES[key]
    settings = load_settings(ROOT, env={**BASE, f"FANLINE_{key.upper()}": value})
    assert holds(settings), key


def test_one_key_of_a_mapping_with_a_double_underscore() -> None:
    settings = load_settings(ROOT, env={**BASE, "FANLINE_TEAM_HOURS__START": "08:30",
                                        "FANLINE_ESCALATION_TIMEOUTS__URGENT": "0.5",
                                        "FANLINE_TOPICS__EVERY_S": "3",
                                        "FANLINE_INBOX__SESSION_HOURS": "4"})  # fmt: skip
    assert settings.team_hours is not None and settings.team_hours.start == "08:30"
    assert settings.team_hours.timezone == "America/New_York"  # the rest from config.yml
    assert settings.escalation_timeouts["urgent"] == 0.5
    assert settings.escalation_timeouts["high"] == 4.0  # config.yml's
    assert settings.topics.every_s == 3.0
    assert settings.inbox["session_hours"] == 4


def test_an_invalid_value_names_the_variable_not_the_file() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(ROOT, env={**BASE, "FANLINE_REPLY_BUDGET_MS": "-5"})
    assert "FANLINE_REPLY_BUDGET_MS" in str(err.value) and "config.yml" not in str(err.value)
    with pytest.raises(ConfigError, match="FANLINE_TOPICS__EVERY_S"):
        load_settings(ROOT, env={**BASE, "FANLINE_TOPICS__EVERY_S": "soon"})
    with pytest.raises(ConfigError, match="FANLINE_MIGRATE_ON_START"):
        load_settings(ROOT, env={**BASE, "FANLINE_MIGRATE_ON_START": "maybe"})
