"""The demo fan line's custom actions (Nova Vale, "Northern Lights" tour), as rasa-sdk actions.

Flows call these by name (`- action: action_next_show_near_fan`); the engine runs them through
`bot.actions.ActionRunner`, in-process or on `python -m rasa_sdk --actions actions`. They only
see what the tracker carries: slots, the latest message (its `metadata.fan` holds the fan's
profile without the phone number) and the domain.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.tour_data import TOUR_URL, Show, nearest_show, normalise_postal_code, show_in_city

PRESALE_PREFIX = "NL"
_PRESALE = re.compile(rf"^{PRESALE_PREFIX}(\d{{6}})$")


def say(
    dispatcher: CollectingDispatcher, domain: dict, response: str, fallback: str, **values: Any
) -> None:
    """Utter `response` when the content defines it (values fill its {slots}), else `fallback`."""
    if response in (domain or {}).get("responses", {}):
        dispatcher.utter_message(response=response, **values)
    else:
        dispatcher.utter_message(text=fallback.format(**values))


def fan_profile(tracker: Tracker) -> dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return metadata.get("fan") or {}


def latest_entity(tracker: Tracker, name: str) -> str | None:
    """The first value of entity `name` in the fan's latest text (what they just said wins)."""
    values = [str(v) for v in tracker.get_latest_entity_values(name) if v]
    return values[0] if values else None


def presale_code_is_valid(raw: Any) -> bool:
    """`NL` + six digits whose last is the Luhn check digit of the first five (e.g. NL123455).

    Spaces, hyphens and case are ignored, so "nl-123 455" is the same code.
    """
    if not isinstance(raw, str):
        return False
    match = _PRESALE.match(re.sub(r"[\s-]", "", raw).upper())
    return bool(match) and _luhn_ok(match.group(1))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


class ActionNextShowNearFan(Action):
    """The show in the city the fan names (in the latest text, or slot `zip` when it holds a
    tour city), else the closest one to a ZIP or city: the one in the fan's latest text first
    ("any shows near 90210?"), then slot `zip`, then the fan's profile."""

    def name(self) -> str:
        return "action_next_show_near_fan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        city = latest_entity(tracker, "city")
        place = tracker.get_slot("zip")  # a `location`: a ZIP or a city ("toronto?")
        show = show_in_city(city or "") or show_in_city(text) or show_in_city(str(place or ""))
        if show is not None:
            _say_show(dispatcher, domain, "utter_show_in_city", show)
            return [SlotSet("nearest_show_city", show.city)]
        raw = (
            latest_entity(tracker, "zip")
            or tracker.get_slot("zip")
            or fan_profile(tracker).get("zip")
        )
        if not raw:
            say(
                dispatcher,
                domain,
                "utter_ask_zip_for_shows",
                "Text me your ZIP or postal code and I'll find the Northern Lights show closest to you!",
            )
            return [SlotSet("nearest_show_city", None)]
        show = nearest_show(str(raw), date.today())
        if show is None:
            say(
                dispatcher,
                domain,
                "utter_no_show_found",
                "I couldn't match that code to a show, but every date is at {tour_url}",
                tour_url=TOUR_URL,
            )
            return [SlotSet("nearest_show_city", None)]
        _say_show(dispatcher, domain, "utter_nearest_show", show)
        return [SlotSet("nearest_show_city", show.city)]


def _say_show(dispatcher: CollectingDispatcher, domain: dict, response: str, show: Show) -> None:
    fallback = {
        "utter_nearest_show": "Nova's closest Northern Lights show: {city}, {venue}, {show_date}. Tickets: {ticket_url}",
        "utter_show_in_city": "Nova plays {city} on {show_date} at {venue}. Tickets: {ticket_url}",
    }[response]
    say(
        dispatcher,
        domain,
        response,
        fallback,
        city=show.city,
        venue=show.venue,
        show_date=f"{show.day:%a %b} {show.day.day}",
        ticket_url=show.ticket_url,
    )


class ActionCheckPresaleCode(Action):
    """Checks slot `presale_code` against the presale rule and sets `presale_code_valid`.

    It says nothing: the flow branches on the slot and the content team's responses answer.
    """

    def name(self) -> str:
        return "action_check_presale_code"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [
            SlotSet("presale_code_valid", presale_code_is_valid(tracker.get_slot("presale_code")))
        ]


class ActionSaveProfile(Action):
    """Confirms the fan's `birthday` and `zip` (the ZIP in canonical form) as slot events.

    A placeholder for a CRM sync: it stores nothing itself. The engine persists slots into the
    fan's profile; a real fan line would push them to its CRM here.
    """

    def name(self) -> str:
        return "action_save_profile"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events: list[EventType] = []
        birthday = tracker.get_slot("birthday")
        if birthday:
            events.append(SlotSet("birthday", birthday))
        zip_code = tracker.get_slot("zip")
        if zip_code:
            events.append(SlotSet("zip", normalise_postal_code(str(zip_code)) or zip_code))
        return events
