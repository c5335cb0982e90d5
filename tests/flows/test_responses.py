"""Rendering responses and counting SMS segments."""

from __future__ import annotations

import random

import pytest
from flow_helpers import write

from bot.errors import ConfigError
from bot.flows import Responses, load_domain, sms_segments
from bot.flows.responses import interpolate

DOMAIN = """
responses:
  utter_greet:
    - text: "Hey {first_name}! 👋"
    - text: "Hi {first_name}!"
    - text: "Welcome back, VIP"
      condition:
        - type: slot
          name: tier
          value: vip
  utter_poster:
    - text: "Here's the poster"
      image: "https://example.com/poster.jpg"
"""


@pytest.fixture
def responses(tmp_path):
    return Responses(load_domain([write(tmp_path, "domain.yml", DOMAIN)]))


def test_variants_are_seeded_and_conditions_win(responses):
    fan = {"first_name": "Ana"}
    texts = {
        responses.render("utter_greet", {}, fan, random.Random(seed)).text for seed in range(30)
    }
    assert texts == {"Hey Ana! 👋", "Hi Ana!"}
    same = [responses.render("utter_greet", {}, fan, random.Random(7)).text for _ in range(3)]
    assert len(set(same)) == 1
    vip = responses.render("utter_greet", {"tier": "vip"}, fan, random.Random(0))
    assert vip.text == "Welcome back, VIP"


def test_media_and_unknown_response(responses):
    poster = responses.render("utter_poster", {}, {}, random.Random(0))
    assert poster.media_urls == ("https://example.com/poster.jpg",)
    with pytest.raises(ConfigError, match="utter_nope"):
        responses.render("utter_nope", {}, {}, random.Random(0))


def test_interpolation_is_safe():
    slots = {"zip": "90210", "n": 3.0, "ok": True, "first_name": None}
    fan = {"first_name": "Ana", "secret": object()}
    template = "{first_name} {zip} {n} {ok} {missing} {{literal}} {zip.__class__} {0} {zip!r}"
    assert interpolate(template, slots, fan).startswith(
        "Ana 90210 3 yes  {literal} {zip.__class__}"
    )
    assert interpolate("{0} {zip!r} {", slots, fan) == "{0} {zip!r} {"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, "GSM-7")),
        ("a" * 160, (1, "GSM-7")),
        ("a" * 161, (2, "GSM-7")),
        ("a" * 306, (2, "GSM-7")),
        ("a" * 307, (3, "GSM-7")),
        ("€" * 80, (1, "GSM-7")),  # extension characters cost two septets
        ("€" * 81, (2, "GSM-7")),
        ("a" * 152 + "€", (1, "GSM-7")),
        ("a" * 159 + "€", (2, "GSM-7")),
        ("é" * 160, (1, "GSM-7")),  # é is in the basic table
        ("ê", (1, "UCS-2")),
        ("ê" * 70, (1, "UCS-2")),
        ("ê" * 71, (2, "UCS-2")),
        ("ê" * 134, (2, "UCS-2")),
        ("ê" * 135, (3, "UCS-2")),
        ("🎉" * 35, (1, "UCS-2")),  # surrogate pairs: two units each
        ("🎉" * 36, (2, "UCS-2")),
        ("Привет", (1, "UCS-2")),
    ],
)
def test_sms_segments(text, expected):
    assert sms_segments(text) == expected
