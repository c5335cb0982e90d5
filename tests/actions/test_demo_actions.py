"""The demo's custom actions (Nova Vale's tour) run in-process through ActionRunner."""

from __future__ import annotations

from datetime import date

import pytest

from actions.actions import presale_code_is_valid
from actions.tour_data import SHOWS, TOUR_URL, locate, nearest_show, normalise_postal_code
from bot.actions import ActionCall, ActionRunner

TOUR_STARTS = min(show.day for show in SHOWS)
RESPONSES = {
    "responses": {
        "utter_nearest_show": [{"text": "{city}: {venue} on {show_date}. {ticket_url}"}],
    }
}


@pytest.fixture
async def runner():
    runner = ActionRunner(package="actions")
    yield runner
    await runner.aclose()


def call(name: str, slots: dict | None = None, **message) -> ActionCall:
    return ActionCall(name, "7", slots or {}, message or {"text": "hi"}, "demo")


def expected_city(postal_code: str) -> str | None:
    show = nearest_show(postal_code, date.today())
    return show.city if show else None


# --- the pure tour table, on fixed dates -------------------------------------------------


@pytest.mark.parametrize(
    ("code", "city"),
    [
        ("10001", "New York"),  # the metro's own ZIP prefix
        ("M5V 2T6", "Toronto"),  # Canadian postal code, metro letter
        ("h2x1y4", "Montreal"),  # lower case, no space
        ("97201", "Seattle"),  # Portland, OR: by state range, not region 9's centre
        ("99501", "Vancouver"),  # Anchorage, AK
        ("33101", "Atlanta"),  # Miami: Florida
        ("46204", "Chicago"),  # Indianapolis: region 4's centre
        ("T2P 1J9", "Vancouver"),  # Calgary: Alberta's centre is nearest Vancouver
        ("02108-1234", "Boston"),  # ZIP+4
        ("75201", "Austin"),  # Dallas: region 7
    ],
)
def test_nearest_show_before_the_tour(code, city):
    assert nearest_show(code, TOUR_STARTS).city == city


def test_a_past_show_is_skipped_for_the_next_nearest():
    seattle = next(show for show in SHOWS if show.city == "Seattle")
    after_seattle = date.fromordinal(seattle.day.toordinal() + 1)

    assert nearest_show("98101", TOUR_STARTS).city == "Seattle"
    # Seattle is behind us: Vancouver, two days later and 200 km north, is the nearest left
    assert nearest_show("98101", after_seattle).city == "Vancouver"
    vancouver = next(show for show in SHOWS if show.city == "Vancouver")
    after_vancouver = date.fromordinal(vancouver.day.toordinal() + 1)
    assert nearest_show("98101", after_vancouver).city == "San Francisco"


def test_no_show_after_the_tour_or_for_an_unknown_code():
    after_tour = date.fromordinal(max(show.day for show in SHOWS).toordinal() + 1)
    assert nearest_show("10001", after_tour) is None
    assert nearest_show("1234", TOUR_STARTS) is None
    assert nearest_show("D1A 1A1", TOUR_STARTS) is None  # D is not a Canadian first letter
    assert locate("hello") is None


def test_postal_codes_are_normalised():
    assert normalise_postal_code(" m5v2t6 ") == "M5V 2T6"
    assert normalise_postal_code("10001-1234") == "10001"
    assert normalise_postal_code("1000") is None


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("NL123455", True),
        ("nl-123 455", True),
        ("NL000000", True),
        ("NL123456", False),  # wrong check digit
        ("NL12345", False),
        ("XX123455", False),
        (None, False),
        (123455, False),
    ],
)
def test_presale_code_rule(code, valid):
    assert presale_code_is_valid(code) is valid


# --- through the runner -----------------------------------------------------------------


async def test_next_show_near_fan_from_the_zip_slot(runner):
    result = await runner.run(call("action_next_show_near_fan", {"zip": "M5V 2T6"}))

    city = expected_city("M5V 2T6")
    assert result.slots == {"nearest_show_city": city}
    (message,) = result.messages
    if city is None:  # the tour is over: the fallback points to the tour page
        assert TOUR_URL in message["text"]
    else:
        show = nearest_show("M5V 2T6", date.today())
        assert show.venue in message["text"] and show.ticket_url in message["text"]


async def test_next_show_near_fan_falls_back_to_the_fan_profile(runner):
    message = {"text": "tour?", "metadata": {"fan": {"zip": "60614"}}}
    result = await runner.run(call("action_next_show_near_fan", **message))

    assert result.slots == {"nearest_show_city": expected_city("60614")}


async def test_next_show_near_fan_asks_for_a_zip_when_there_is_none(runner):
    result = await runner.run(call("action_next_show_near_fan"))

    assert result.slots == {"nearest_show_city": None}
    assert "ZIP" in result.messages[0]["text"]


async def test_next_show_near_fan_with_an_unplaceable_code(runner):
    result = await runner.run(call("action_next_show_near_fan", {"zip": "not a zip"}))

    assert result.slots == {"nearest_show_city": None}
    assert TOUR_URL in result.messages[0]["text"]


async def test_next_show_uses_the_content_teams_response_when_the_domain_has_one():
    runner = ActionRunner(package="actions", domain=RESPONSES)
    result = await runner.run(call("action_next_show_near_fan", {"zip": "10001"}))
    await runner.aclose()

    show = nearest_show("10001", date.today())
    if show is not None:
        (message,) = result.messages
        assert message["response"] == "utter_nearest_show"
        assert (message["city"], message["venue"]) == (show.city, show.venue)
        assert message["ticket_url"] == show.ticket_url


@pytest.mark.parametrize(("code", "valid"), [("nl 123455", True), ("NL999999", False)])
async def test_check_presale_code_sets_the_slot_and_leaves_the_reply_to_the_flow(
    runner, code, valid
):
    result = await runner.run(call("action_check_presale_code", {"presale_code": code}))

    assert result.slots == {"presale_code_valid": valid}
    assert result.messages == ()


async def test_check_presale_code_without_a_code_is_invalid(runner):
    result = await runner.run(call("action_check_presale_code"))
    assert result.slots == {"presale_code_valid": False}


async def test_save_profile_confirms_birthday_and_canonical_zip(runner):
    slots = {"birthday": "2001-05-17", "zip": "m5v2t6", "first_name": "Ada"}
    result = await runner.run(call("action_save_profile", slots))

    assert result.slots == {"birthday": "2001-05-17", "zip": "M5V 2T6"}
    assert result.messages == ()


async def test_save_profile_with_nothing_collected_sets_nothing(runner):
    result = await runner.run(call("action_save_profile"))
    assert result.slots == {} and result.other_events == ()
