"""Plain domain types the store returns and the pipeline hands back: fans, conversations, turns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.linkish import shown_profile
from bot.messages import OutboundSms

SUBSCRIPTION_STATES = ("pending", "subscribed", "unsubscribed")
# bot: the bot answers | waiting: escalated, nobody has claimed it yet (the bot still answers
# what it is sure of; hand-offs join the open escalation) | open: an agent owns the thread (the
# bot is quiet but for STOP/HELP) | snoozed: an agent set it aside (quiet; a text reopens it) |
# missed: nobody answered in time, the fan was told and is back with the bot, the team still
# sees it | resolved: an agent handed it back to the bot. docs/architecture.md has the table.
CONVERSATION_STATES = ("bot", "waiting", "open", "snoozed", "missed", "resolved")
PERSON_IN_THREAD = ("open", "snoozed")  # the bot holds the fan's texts for the agent
IN_QUEUE = ("waiting", "open", "snoozed", "missed")  # the team's inbox lists these
PRIORITIES = ("low", "normal", "high", "urgent")


def higher_priority(a: str, b: str) -> str:
    """The more urgent of two priorities (an escalation joined by a more urgent text rises)."""
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    return a if rank.get(a, 1) >= rank.get(b, 1) else b


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    phone: str | None  # None once erased
    profile: dict[str, Any]
    subscription: str  # pending | subscribed | unsubscribed
    created_at: datetime
    subscribed_at: datetime | None = None

    def fan_fields(self, *, is_new: bool = False) -> dict[str, Any]:
        """What flows and responses may see of a fan (`fan.*`): never the phone number."""
        return {
            **shown_profile(self.profile),  # a link-like first name never reaches a text
            "subscription": self.subscription,
            "subscribed": self.subscription == "subscribed",
            "is_new": is_new,
            "tags": list(self.profile.get("tags", [])),
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """Result of recording an inbound text (step 1 of the pipeline)."""

    contact: Contact
    message_id: int
    duplicate: bool  # the channel delivered this MessageSid before
    is_new_contact: bool
    answered: bool = False  # a duplicate whose original turn has already been processed


@dataclass(frozen=True, slots=True)
class PendingText:
    message_id: int
    body: str
    num_media: int
    received_at: datetime
    channel_id: str = ""  # the provider's id, as stored
    recipient: str = ""  # the number the fan texted


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a turn reads, loaded in one round trip under the fan's lock."""

    contact: Contact
    conversation_id: int
    status: str  # one of CONVERSATION_STATES
    dialogue: dict[str, Any]
    pending: tuple[PendingText, ...]  # unprocessed inbound texts, oldest first
    last_broadcast_id: int | None = None  # a broadcast sent within the reply window
    last_broadcast_text: str | None = None  # what it said ("... Reply VIP"): replies may answer it


@dataclass(frozen=True, slots=True)
class EscalationSpec:
    """A hand-off the turn asks for. The store opens an escalation, or, when the conversation
    already has an unresolved one, joins it (no second ticket): the text is attached to it and
    its priority rises to the more urgent of the two; a missed one waits again until `due_at`."""

    reason: str
    priority: str = "normal"
    guesses: tuple[tuple[str, float], ...] = ()
    due_at: datetime | None = None  # unanswered by then: missed (None: never)


@dataclass(frozen=True, slots=True)
class ConsentChange:
    action: str  # opt_in | opt_out | resubscribe
    method: str  # sms_keyword | sms_yes | carrier | web_form | agent
    text_shown: str | None = None


@dataclass(slots=True)
class TurnRecord:
    """Everything a turn writes, in one transaction (step 9 of the pipeline)."""

    contact_id: int
    conversation_id: int
    message_id: int  # the inbound text this turn answered
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replies: list[OutboundSms] = field(default_factory=list)
    dialogue: dict[str, Any] | None = None  # None: unchanged
    status: str | None = None  # new conversation status
    profile_updates: dict[str, Any] = field(default_factory=dict)
    tags: list[tuple[str, str]] = field(default_factory=list)  # (tag, source): fan_tags rows
    consent: ConsentChange | None = None
    escalation: EscalationSpec | None = None
    attach_to_escalation: bool = False  # a held text: part of the open escalation's texts
    inbound_status: str = "processed"  # processed | held | ignored (the fan opted out)
    broadcast_id: int | None = None  # the inbound text answers this broadcast (reply window)
    # committed before this instant, the replies are answered inline (TwiML): status `twiml`
    inline_until: datetime | None = None
    hold_replies_until: datetime | None = None  # otherwise they wait in the outbox until then


@dataclass(frozen=True, slots=True)
class QueuedReply:
    outbox_id: int
    reply: OutboundSms
    status: str = "queued"
