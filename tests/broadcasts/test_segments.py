"""Segments: YAML and command-line parsing with located errors, and their SQL on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audience.segments import Segment, load_segments, parse_cli
from bot.errors import ConfigError
from bot.storage import Store
from bot.storage.broadcast_store import BroadcastStore
from tests.broadcasts.helpers import add_fans, number
from tests.conftest import ROOT

FANS = [
    {"profile": {"tags": ["vip", "la"], "zip": "90026", "birthday": "1999-03-02", "tier": "gold"},
     "replied_days_ago": 3, "subscribed_days_ago": 10},
    {"profile": {"tags": ["vip"], "zip": "10001", "birthday": "2001-07-09"}, "replied_days_ago": 45},
    {"profile": {"tags": ["staff"], "zip": "79901", "birthday": "1990-03-30"}, "subscribed_days_ago": 400},
    {"profile": {"country": "GB", "tags": []}},
    {"profile": {"tags": ["vip"], "zip": "90210"}, "subscription": "unsubscribed"},
    {"profile": {"tags": ["vip"], "zip": "K1A 0B1", "country": "CA"}},
]  # fmt: skip


@pytest.fixture
async def fans(store: Store) -> BroadcastStore:
    await add_fans(store, [{"phone": number(i), **f} for i, f in enumerate(FANS)])
    return BroadcastStore(store)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ([], 5),  # every subscribed fan; the unsubscribed one never counts
        (["tags=vip"], 3),
        (["any_tags=la,staff"], 2),
        (["tags=vip", "not_tags=la"], 2),
        (["profile.tier=gold"], 1),
        (["zip_prefix=900,100"], 2),
        (["state=CA"], 1),
        (["state=TX"], 1),  # El Paso is Mountain time but still Texas
        (["country=US"], 3),  # a US ZIP without a country counts as US
        (["country=GB,CA"], 2),
        (["birthday_month=3"], 2),
        (["replied_within_days=30"], 1),
        (["signed_up_after=" + "2000-01-01", "signed_up_before=2100-01-01"], 5),
    ],
)
async def test_each_criterion_is_counted_by_the_database(
    fans: BroadcastStore, where: list[str], expected: int
) -> None:
    assert await fans.count(parse_cli("t", where)) == expected


async def test_signup_date_ranges(fans: BroadcastStore) -> None:
    from datetime import UTC, datetime, timedelta

    cutoff = (datetime.now(UTC) - timedelta(days=100)).date().isoformat()
    assert await fans.count(parse_cli("t", [f"signed_up_before={cutoff}"])) == 1
    assert await fans.count(parse_cli("t", [f"signed_up_after={cutoff}"])) == 4


def test_the_demo_segments_load() -> None:
    segments = load_segments(ROOT / "segments.yml")
    assert segments["vip"].tags == ("vip",) and "east_coast_tour" in segments


def test_errors_name_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "segments.yml"
    path.write_text(
        "segments:\n  ok:\n    tags: [vip]\n  bad:\n    tags: [vip]\n    birthday_month: 13\n"
    )
    with pytest.raises(ConfigError) as err:
        load_segments(path)
    assert str(err.value).startswith(f"{path}:6 [segments.bad.birthday_month]")
    path.write_text("segments:\n  bad:\n    colour: blue\n")
    with pytest.raises(ConfigError, match=r":3 \[segments.bad.colour\]: unknown criterion"):
        load_segments(path)
    with pytest.raises(ConfigError, match="unknown US state"):
        parse_cli("t", ["state=ZZ"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_cli("t", ["vip"])


def test_a_segment_survives_its_json_round_trip() -> None:
    seg = parse_cli("x", ["tags=vip", "profile.tier=gold,silver", "birthday_month=3,4",
                          "signed_up_after=2025-01-01", "replied_within_days=7"])  # fmt: skip
    assert Segment.from_json(seg.to_json()) == seg
