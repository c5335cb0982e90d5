"""Actions that exercise the runner's edges; served in-process and by a real action server."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection


class ActionEcho(Action):
    """Reports what it saw in the tracker and domain as slots, and dispatches every message kind."""

    def name(self) -> str:
        return "action_echo"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        flows = [frame.get("flow_id") for frame in tracker.stack]
        dispatcher.utter_message(text=f"echo {tracker.latest_message.get('text')}")
        dispatcher.utter_message(response="utter_show", city="Denver")
        dispatcher.utter_message(image="https://novavale.example/poster.jpg")
        dispatcher.utter_message(json_message={"kind": "card"})
        return [
            SlotSet("seen_sender", tracker.sender_id),
            SlotSet("seen_intent", intent),
            SlotSet("seen_entities", [e["value"] for e in tracker.latest_message["entities"]]),
            SlotSet("seen_flows", flows),
            SlotSet("seen_slots", dict(tracker.slots)),
            SlotSet("seen_events", len(tracker.events)),
            SlotSet("seen_latest_action", tracker.latest_action_name),
            SlotSet("seen_domain_slots", sorted(domain.get("slots", {}))),
            FollowupAction("action_listen"),
        ]


class ActionExplode(Action):
    def name(self) -> str:
        return "action_explode"

    def run(self, dispatcher, tracker, domain) -> list[EventType]:
        raise RuntimeError("the CRM is down")


class ActionReject(Action):
    def name(self) -> str:
        return "action_reject"

    def run(self, dispatcher, tracker, domain) -> list[EventType]:
        raise ActionExecutionRejection(self.name(), "not today")


class ActionHang(Action):
    """Never finishes: waits on an event nobody sets (a stuck upstream call)."""

    def name(self) -> str:
        return "action_hang"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        await asyncio.Event().wait()
        return []


class ActionRaisesTimeout(Action):
    """Its own upstream call timed out: a failure, not the runner's deadline."""

    def name(self) -> str:
        return "action_raises_timeout"

    async def run(self, dispatcher, tracker, domain) -> list[EventType]:
        raise TimeoutError("upstream ticketing API")
