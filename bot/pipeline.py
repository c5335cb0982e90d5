"""The path of one inbound text, top to bottom: record, compliance, lock, load, decide, persist.

`Pipeline.handle_inbound` is the whole story; each stage is a named call. Decisions are made
from values (compliance, NLU, the flow engine); nothing but the inbound text is written before
`store.finish_turn`, which writes the turn's events, state and replies in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot import compliance, metrics
from bot.actions import ActionCall, ActionRunner
from bot.compliance import language
from bot.domain import (
    PERSON_IN_THREAD,
    ConsentChange,
    EscalationSpec,
    PendingText,
    QueuedReply,
    Recorded,
    TurnContext,
    TurnRecord,
)
from bot.errors import ActionError
from bot.escalation import EscalationPolicy
from bot.flows import (
    DialogueState,
    FlowEnded,
    FlowEngine,
    FlowStarted,
    HandOff,
    Progress,
    Say,
    SetSlot,
    StepTaken,
    Subscribe,
    TagFan,
    TurnInput,
    Unsubscribe,
    Wait,
)
from bot.flows.responses import RenderedResponse, Responses
from bot.flows.triggers import payload_prediction
from bot.locks import ContactLocks
from bot.messages import InboundSms, OutboundSms, Prediction, utcnow
from bot.nlu.batching import EncodingBatcher
from bot.nlu.data import OUT_OF_SCOPE
from bot.nlu.questions import Reading, pack_replies, pick_questions, split_questions
from bot.storage import Store

log = logging.getLogger(__name__)
DRAIN_YIELD_S = 1.0  # a burst's next text waits at most this long for other fans' turns
DRAIN_BATCH = 16  # a burst's texts encoded together


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """What happened to one inbound text; the channel answers with it."""

    message_id: int
    contact_id: int
    replies: tuple[QueuedReply, ...] = ()
    duplicate: bool = False
    held: bool = False  # a person is in the thread: the bot stayed silent
    prediction: Prediction | None = None
    events: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def to_send(self) -> bool:
        """Replies wait for the outbox sender (none answered inline)."""
        return any(q.status == "queued" for q in self.replies)

    @property
    def escalation(self) -> dict[str, Any] | None:
        return next((d for t, d in self.events if t == "escalated"), None)


@dataclass(frozen=True, slots=True)
class Brain:
    """Content and model that answer turns; swapped whole on reload, captured whole per turn."""

    engine: FlowEngine
    interpreter: Any  # bot.nlu.Interpreter: parse(text) -> Prediction
    responses: Responses
    nlu: EncodingBatcher  # the interpreter, with concurrent texts encoded together
    phrases: Any = None  # the line's compliance phrase model (None: the shipped one)

    @classmethod
    def of(cls, engine: FlowEngine, interpreter: Any, phrases: Any = None) -> Brain:
        batcher = EncodingBatcher(interpreter)
        return cls(engine, interpreter, Responses(engine.domain), batcher, phrases)


@dataclass(slots=True)
class _Turn:
    """The working record of one turn while it is being decided."""

    ctx: TurnContext
    message_id: int
    msg: InboundSms
    record: TurnRecord
    brain: Brain
    prediction: Prediction | None = None
    said: list[Say] = field(default_factory=list)
    num_media: int = 0
    flow_from: tuple[int, int] = (0, 0)  # (replies, events) when the latest flow started
    # the escalating flow's replies and events: [start, end) of each (its acknowledgement)
    ack: tuple[int, int, int, int] | None = None


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        locks: ContactLocks,
        engine: FlowEngine,
        interpreter: Any,  # bot.nlu.Interpreter: parse(text) -> Prediction
        actions: ActionRunner,
        on_commit: Callable[[TurnOutcome], None] = lambda outcome: None,
        escalations: EscalationPolicy | None = None,
        fan_links: Callable[[int], dict[str, str]] = lambda contact_id: {},
        max_segments: int = 3,
        phrases: Any = None,  # bot.compliance.phrases.PhraseModel: the line's
        compliance_policy: compliance.Policy | None = None,  # config.yml `fanline.compliance:`
        fan_in_flight: int = 4,
    ):
        self.store = store
        self.locks = locks
        self.brain = Brain.of(engine, interpreter, phrases)
        self.compliance_policy = compliance_policy or compliance.Policy()
        self.actions = actions
        self.on_commit = on_commit  # wakes the outbox sender and the inbox's live feed
        self.escalations = escalations or EscalationPolicy()  # due times, team hours
        self.fan_links = fan_links  # e.g. {"signup_link": ...}: personal, signed, no number in it
        self.max_segments = (
            max_segments  # several answers, or a first reply, share texts up to this
        )
        # fair scheduling: at most this many webhook turns of one fan wait for its lock; the
        # rest are stored, acknowledged at once and answered in order by one drain per fan
        self.fan_in_flight = fan_in_flight
        self._in_flight: dict[str, int] = {}
        self._drains: dict[str, asyncio.Future[None]] = {}
        self._undrained: set[str] = set()  # fans with texts stored since their drain last looked
        self._turns = 0  # texts being handled in this process (drains give way to them)
        self._no_turns = asyncio.Event()
        self._no_turns.set()

    def reload(self, engine: FlowEngine, interpreter: Any, phrases: Any = None) -> None:
        """Swap content and model between turns (hot reload; no turn sees a mix)."""
        self.brain = Brain.of(engine, interpreter, phrases)

    async def handle_inbound(
        self, msg: InboundSms, *, inline_s: float = 0.0, recorded: asyncio.Event | None = None
    ) -> TurnOutcome:
        """Answer one text. Replies committed within `inline_s` are marked for the caller to
        deliver inline (a TwiML answer, the shell); the rest go to the outbox sender.

        `recorded` is set once the text is committed: from then on it is durable, and the
        channel may acknowledge it even if the turn is still running.
        """
        self._turns += 1  # a burst's drain waits while any text is being taken in or answered
        self._no_turns.clear()
        try:
            if recorded is not None and self._in_flight.get(msg.sender, 0) >= self.fan_in_flight:
                return await self._overflow(msg, recorded)
            self._in_flight[msg.sender] = self._in_flight.get(msg.sender, 0) + 1
            try:
                return await self._handle(msg, inline_s, recorded)
            finally:
                self._in_flight[msg.sender] -= 1
                if not self._in_flight[msg.sender]:  # forget idle fans: memory stays flat
                    del self._in_flight[msg.sender]
        finally:
            self._turns -= 1
            if not self._turns:
                self._no_turns.set()

    async def _overflow(self, msg: InboundSms, recorded: asyncio.Event) -> TurnOutcome:
        """A fan past its cap of turns in flight (a burst): store the text and acknowledge it
        without waiting for the fan's lock, so one number's burst holds one lock queue of
        bounded length and other fans' turns are not starved; the fan's drain answers it."""
        rec = await self.store.record_inbound(msg)
        recorded.set()
        if rec.duplicate and rec.answered:  # a redelivery: what we answered before
            replies = await self.store.replies_to(rec.message_id)
            return TurnOutcome(rec.message_id, rec.contact.id, tuple(replies), True)
        self._drain_soon(msg.sender, rec.contact.id)
        return TurnOutcome(rec.message_id, rec.contact.id, duplicate=rec.duplicate)

    def _drain_soon(self, phone: str, contact_id: int) -> None:
        """Make sure a drain will read the fan's texts after this one was committed.

        Synchronous on purpose: a drain stops only after a read that began with no text
        marked stored since, and unregisters in the same step, so a text committed before
        this call is always seen, by the running drain or by a new one."""
        self._undrained.add(phone)
        if phone not in self._drains:
            self._drains[phone] = asyncio.ensure_future(self._drain(phone, contact_id))

    async def _drain(self, phone: str, contact_id: int) -> None:
        """Answer the fan's stored texts in order, one per hold of its lock, until none is
        left. Each waits until no webhook turn runs here (for at most `DRAIN_YIELD_S`): a
        burst's turns fill the time other fans leave, so their webhooks are answered first."""
        try:
            while True:
                self._undrained.discard(phone)
                if self._turns:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._no_turns.wait(), DRAIN_YIELD_S)
                async with self.locks.hold(phone):
                    ctx = await self.store.load_turn(contact_id)
                    if ctx.pending:
                        await self._encode_ahead(ctx.pending)
                        text = ctx.pending[0]
                        first = await self.store.is_first_text(contact_id, text.message_id)
                        await self._turn(ctx, text, _stored_inbound(text, ctx), first, None)
                        continue
                if phone not in self._undrained:  # checked and unregistered in one step
                    del self._drains[phone]
                    return
        except Exception:  # a background task's top: the unanswered pass answers them later
            log.exception(
                "a fan's burst could not be answered now", extra={"contact_id": contact_id}
            )
        if self._drains.get(phone) is asyncio.current_task():
            del self._drains[phone]

    async def _encode_ahead(self, pending: Any) -> None:
        """A burst's next texts in one encoder call (batched: far cheaper per text than one
        call each, and the drain's turns then parse from the cache)."""
        interpreter = self.brain.interpreter
        if not hasattr(interpreter, "needs_encoding"):
            return
        bodies = [t.body for t in pending[:DRAIN_BATCH] if interpreter.needs_encoding(t.body)]
        if len(bodies) > 1:
            with contextlib.suppress(Exception):  # parse() encodes on its own if this fails
                await asyncio.to_thread(interpreter.prefetch, bodies)

    async def drained(self) -> None:
        """Wait until no fan's burst is left to answer in this process (tests, shutdown)."""
        while self._drains:
            await asyncio.gather(*self._drains.values(), return_exceptions=True)

    async def _handle(
        self, msg: InboundSms, inline_s: float, recorded: asyncio.Event | None
    ) -> TurnOutcome:
        started = time.perf_counter()
        inline = utcnow() + timedelta(seconds=inline_s) if inline_s else None
        early = None
        if recorded is not None and self.locks.busy(msg.sender):
            # another turn of this fan is running: store the text now, so it is acknowledged
            # without waiting for that turn (it is answered, in order, once the lock is ours)
            early = await self.store.record_inbound(msg)
            recorded.set()
        async with self.locks.hold(msg.sender):  # 1. one turn at a time per fan, in order
            rec, ctx = await self.store.begin_turn(msg)  # 2. record (idempotent) and load
            if recorded is not None:
                recorded.set()
            if early is not None and not early.duplicate:  # recorded above: still a new text
                rec = replace(rec, duplicate=False, is_new_contact=early.is_new_contact)
            if ctx is None:  # a duplicate delivery of an answered text: the same replies
                replies = await self.store.replies_to(rec.message_id)
                return TurnOutcome(rec.message_id, rec.contact.id, tuple(replies), True)
            outcome = await self._answer_pending(ctx, msg, rec, inline)
        if outcome is None:  # already answered by a turn that ended in between
            replies = await self.store.replies_to(rec.message_id)
            outcome = TurnOutcome(rec.message_id, rec.contact.id, tuple(replies))
        metrics.TURN_SECONDS.observe(time.perf_counter() - started)
        return outcome

    async def answer_unanswered(self, contact_id: int, phone: str) -> int:
        """Answer the texts a crash left `received` (start-up and periodic recovery).

        Under the fan's lock (an advisory lock across processes on PostgreSQL) the texts still
        unanswered are read again, so a text another worker answered meanwhile is never
        answered twice. Returns how many texts were answered.
        """
        async with self.locks.hold(phone):
            ctx = await self.store.load_turn(contact_id)
            count = len(ctx.pending)
            if count:
                await self._answer_pending(ctx, None, None, None)
        return count

    async def _answer_pending(
        self,
        ctx: TurnContext,
        msg: InboundSms | None,
        rec: Recorded | None,
        inline: datetime | None,
    ) -> TurnOutcome | None:
        """Answer the fan's unanswered texts in the order they came, up to `rec`'s own.

        Only the current text's replies may be answered inline: an earlier text's replies
        always go through the outbox, since the channel's answer carries the current text's.
        """
        while ctx.pending:
            text = ctx.pending[0]
            current = rec is not None and text.message_id == rec.message_id
            if current:
                assert msg is not None and rec is not None
                return await self._turn(ctx, text, msg, rec.is_new_contact, inline)
            first = await self.store.is_first_text(ctx.contact.id, text.message_id)
            await self._turn(ctx, text, _stored_inbound(text, ctx), first, None)
            ctx = await self.store.load_turn(ctx.contact.id)
        return None

    async def _turn(
        self,
        ctx: TurnContext,
        text: PendingText,
        msg: InboundSms,
        is_new: bool,
        inline: datetime | None,
    ) -> TurnOutcome:
        message_id, body = text.message_id, text.body
        record = TurnRecord(ctx.contact.id, ctx.conversation_id, message_id, inline_until=inline)
        turn = _Turn(ctx, message_id, msg, record, self.brain, num_media=text.num_media)
        if ctx.last_broadcast_id is not None:  # a reply within the window: linked to it
            record.broadcast_id = ctx.last_broadcast_id
            record.events.append(("broadcast_reply", {"broadcast_id": ctx.last_broadcast_id}))
        decision = self._compliance(turn, body)  # 3. STOP always wins, even over a human
        if decision is not None and decision.kind == "confirm_opt_out":
            # unsure: the ask is added to what the NLU is sure the text also says, never
            # instead of it ("my order never came, this is ridiculous" still reaches a person)
            if ctx.status in PERSON_IN_THREAD:
                self._hold_for_human(turn)
            elif await self._says_more(turn, body):
                await self._converse(turn, body, is_new)
            self._comply(turn, decision)
        elif decision is not None:
            self._comply(turn, decision)
            if is_new and decision.kind == "help":  # HELP first: the opt-in is still offered
                await self._converse(turn, "", is_new)
        elif ctx.contact.subscription == "unsubscribed":
            record.events.append(("ignored", {"why": "opted_out"}))  # stored, never answered
            record.inbound_status = "ignored"
        elif ctx.status in PERSON_IN_THREAD:  # 4. an agent owns the thread: the bot is quiet
            self._hold_for_human(turn)
        else:
            await self._converse(turn, body, is_new)  # 5-7. NLU, flows, actions, responses
        replies = await self.store.finish_turn(record)  # 8. one transaction
        outcome = TurnOutcome(
            message_id, ctx.contact.id, tuple(replies), held=record.inbound_status == "held",
            prediction=turn.prediction, events=tuple(record.events),
        )  # fmt: skip
        metrics.count_turn(outcome)
        self.on_commit(outcome)  # 9. side effects only after commit
        return outcome

    async def timed_turn(
        self, ctx: TurnContext, flow_id: str, *, after_step: str | None, seed: int
    ) -> TurnRecord:
        """A timed flow's turn for the scheduler (`bot.audience.scheduler`), which holds the
        fan's lock and writes the record: the flow runs on top of the fan's dialogue, so a
        question it asks is answered by the fan's next text like any other."""
        msg = InboundSms(f"timed:{seed}", ctx.contact.phone or "", "", "")
        record = TurnRecord(ctx.contact.id, ctx.conversation_id, 0)
        turn = _Turn(ctx, seed, msg, record, self.brain)
        inp = TurnInput(text="", fan=self._fan(ctx), seed=seed)
        state = self._known_state(turn)
        progress = turn.brain.engine.start_timed(state, flow_id, inp, after_step=after_step)
        progress = await self._carry_out(turn, progress, inp)
        record.dialogue = progress.state.to_json()
        record.replies[:] = [replace(r, kind="timed") for r in record.replies]
        return record

    # ---- stages -----------------------------------------------------------------------

    def _compliance(self, turn: _Turn, body: str) -> compliance.Decision | None:
        ctx = turn.ctx
        asked = compliance.asked_to_confirm(ctx.dialogue)
        if asked:  # "Reply STOP to stop all texts?" is asked once: this text answers or moves on
            turn.record.dialogue = compliance.with_question(ctx.dialogue, False)
        return compliance.classify(
            body, subscription=ctx.contact.subscription, opt_out_type=turn.msg.opt_out_type,
            asked=asked, model=turn.brain.phrases, policy=self.compliance_policy,
            # after an opt-out by model the fan's next "yes" answers what they were told
            yes_rejoins=not compliance.opted_out_by_model(ctx.dialogue),
        )  # fmt: skip

    def _comply(self, turn: _Turn, decision: compliance.Decision) -> None:
        event = {"kind": decision.kind, "keyword": decision.keyword}
        if decision.score is not None:
            event["score"] = decision.score
        turn.record.events.append(("compliance", event))
        reply = self._consent_change(turn, decision)
        if reply and not decision.provider_handled:  # else the provider already answered
            localised = f"{reply}_{decision.language}"  # e.g. utter_help_es, if the line has it
            name = localised if localised in turn.brain.responses else reply
            self._say(turn, name, kind="compliance")

    def _consent_change(self, turn: _Turn, decision: compliance.Decision) -> str | None:
        """Record what the decision changes; the response that tells the fan (None: nothing)."""
        record = turn.record
        if decision.kind == "opt_out":
            if turn.ctx.contact.subscription == "unsubscribed":
                return None  # at most one confirmation, ever
            record.consent = ConsentChange("opt_out", _method(decision))
            record.dialogue = DialogueState().to_json()  # forget any half-finished flow
            # in the fan's own words (model or explicit wording), a "yes" next is no carrier's
            # "reply YES": only a carrier keyword's opt-out is undone by YES, as Twilio's is
            if decision.keyword in ("model", "phrase"):
                record.dialogue[compliance.BY_MODEL_KEY] = True
            return "utter_opt_out_confirmed"
        if decision.kind == "confirm_opt_out":  # unsure: ask once
            dialogue = record.dialogue if record.dialogue is not None else turn.ctx.dialogue
            # a YES confirms the ask only when no flow is waiting for the fan's answer as well
            record.dialogue = compliance.with_question(dialogue, not dialogue.get("stack"))
            return "utter_ask_opt_out"
        if decision.kind == "opt_in":
            return self._opt_in(turn, decision)
        return "utter_help"

    def _opt_in(self, turn: _Turn, decision: compliance.Decision) -> str:
        contact, record = turn.ctx.contact, turn.record
        if contact.subscription == "subscribed":
            return "utter_already_subscribed"
        action = "resubscribe" if contact.subscription == "unsubscribed" else "opt_in"
        text = self._render("utter_resubscribed", turn).text
        record.consent = ConsentChange(action, _method(decision), text)
        return "utter_resubscribed"

    def _hold_for_human(self, turn: _Turn) -> None:
        turn.record.inbound_status = "held"
        turn.record.attach_to_escalation = True  # the agent reads it with the escalation
        if turn.ctx.status == "snoozed":  # a fan writing back wakes a snoozed thread
            turn.record.status = "open"
        turn.record.events.append(("held_for_human", {"status": turn.ctx.status}))

    async def _says_more(self, turn: _Turn, body: str) -> bool:
        """A sure answer or a sure hand-off in the text besides a possible opt-out (the parse is
        cached: `_converse` reads the same prediction)."""
        prediction = await self._understand(turn.brain, body)
        if prediction.intent in (None, OUT_OF_SCOPE):
            return False  # nothing understood besides the opt-out: the ask alone answers it
        answer, hands_off = turn.brain.engine.judge(prediction)
        return answer is not None or hands_off

    async def _converse(self, turn: _Turn, body: str, is_new: bool) -> None:
        ctx, record = turn.ctx, turn.record
        turn.prediction = await self._understand(turn.brain, body)
        record.events.append(("intent", _intent_event(turn.prediction)))
        state = self._known_state(turn)
        if self._other_language(turn, state):  # 5b. a language the line does not speak
            return
        event = (
            "first_contact" if is_new else ("broadcast_reply" if ctx.last_broadcast_id else None)
        )
        # 6b. several questions in one text: each answered, else the text is one turn
        questions = await self._questions(turn, body, state, event)
        parts = [(q.text, q.prediction) for q in questions] or [(body, turn.prediction)]
        try:
            for text, prediction in parts:
                inp = TurnInput(
                    text=text, prediction=prediction, event=event,
                    fan=self._fan(ctx, is_new),
                    num_media=turn.num_media,
                    seed=turn.message_id,
                    broadcast_text=ctx.last_broadcast_text if event == "broadcast_reply" else None,
                )  # fmt: skip
                progress = turn.brain.engine.turn(state, inp)
                progress = await self._carry_out(turn, progress, inp)
                state = progress.state
        except ActionError as exc:
            log.warning("custom action failed: %s", exc, extra={"contact_id": ctx.contact.id})
            self._internal_error(turn, str(exc))
            return
        record.dialogue = state.to_json()
        if turn.record.escalation is not None:  # before packing: it finds the flow's replies
            self._acknowledge_escalation(turn)
        if questions or is_new:  # several answers, or a first answer and the opt-in pitch
            self._pack_replies(turn)

    async def _questions(
        self, turn: _Turn, body: str, state: DialogueState, event: str | None
    ) -> list[Reading]:
        """The clauses to answer one by one ([]: the whole text is one turn). Only when nothing
        is waiting for an answer and no event (first contact, broadcast reply) is being handled."""
        if state.stack or event or turn.num_media or turn.prediction is None:
            return []
        clauses = split_questions(body)
        if len(clauses) < 2:
            return []
        brain = turn.brain
        judge = brain.engine.judge
        readings = [
            Reading(c, p, *judge(p)) for c, p in [(c, await brain.nlu.parse(c)) for c in clauses]
        ]
        picked = pick_questions(Reading(body, turn.prediction, *judge(turn.prediction)), readings)
        if picked:
            turn.record.events.append(
                ("questions", {"intents": [q.prediction.intent for q in picked]})
            )
        return picked

    def _pack_replies(self, turn: _Turn) -> None:
        """The answers to several questions in as few texts as the segment budget allows."""
        replies = turn.record.replies
        if len(replies) < 2 or any(r.media_urls or r.kind != "reply" for r in replies):
            return  # a compliance text (HELP) stays a text of its own
        texts = pack_replies([r.body for r in replies], self.max_segments)
        turn.record.replies[:] = [replace(replies[0], body=text) for text in texts]

    def _other_language(self, turn: _Turn, state: DialogueState) -> bool:
        """A text the NLU could not place, in another language: say (in it) what the line speaks,
        rather than an English "can't help"; a question or request also reaches a person (the
        reply in the fan's language is the acknowledgement). Not while a flow asks something."""
        p, responses = turn.prediction, turn.brain.responses
        if p is None or state.active is not None:
            return False
        code = language.reply_language(p.text, p.intent, p.confidence)
        if code is None or f"utter_language_{code}" not in responses:
            return False
        turn.record.events.append(("language", {"language": code}))
        if language.pleasantry(p.text):  # "hola, buenas noches": nothing for a person to answer
            self._say(turn, f"utter_language_{code}")
            return True
        handoff = f"utter_language_handoff_{code}"
        self._say(turn, handoff if handoff in responses else f"utter_language_{code}")
        self._hand_off(turn, "other_language", "normal")
        return True

    def _fan(self, ctx: TurnContext, is_new: bool = False) -> dict[str, Any]:
        return {**ctx.contact.fan_fields(is_new=is_new), **self.fan_links(ctx.contact.id)}

    def _known_state(self, turn: _Turn) -> DialogueState:
        """The dialogue state, with what the fan's profile already tells us filled into slots."""
        ctx = turn.ctx
        state = DialogueState.from_json(ctx.dialogue)
        declared = turn.brain.engine.domain.slots
        known = {
            slot: ctx.contact.profile[field]
            for slot, field in PROFILE_SLOTS.items()
            if slot in declared and field in ctx.contact.profile and state.slots.get(slot) is None
        }
        return replace(state, slots={**state.slots, **known}) if known else state

    async def _understand(self, brain: Brain, body: str) -> Prediction:
        if not body.strip():
            return Prediction(text=body, intent=None, confidence=0.0)
        if (payload := payload_prediction(body)) is not None:
            return payload  # a Rasa button's `/intent{...}`: read as Rasa does, no NLU
        return await brain.nlu.parse(body)

    async def _carry_out(self, turn: _Turn, progress: Progress, inp: TurnInput) -> Progress:
        """Apply the engine's commands; run custom actions and resume until the flow waits."""
        while True:
            for command in progress.commands:
                self._apply(turn, command, progress.state)
            if progress.pending_action is None:
                return progress
            result = await self.actions.run(self._action_call(turn, progress))
            turn.record.events.append(("action", {"name": progress.pending_action}))
            for message in result.messages:
                self._action_message(turn, message, progress.state)
            progress = turn.brain.engine.resume(
                progress.state, result.slots, inp, result.other_events
            )

    def _apply(self, turn: _Turn, command: Any, state: DialogueState) -> None:
        record = turn.record
        match command:
            case Say():
                turn.said.append(command)
                self._queue(turn, command.text, command.media_urls, command.response)
            case SetSlot(name=name, value=value):
                record.events.append(("slot_set", {"name": name, "value": value}))
                if name in PROFILE_SLOTS:  # what a fan tells us once is remembered on the profile
                    record.profile_updates[PROFILE_SLOTS[name]] = value
            case HandOff(reason=reason, priority=priority):
                self._hand_off(turn, reason, priority)
            case Subscribe(method=method):
                if turn.ctx.contact.subscription != "subscribed":
                    shown = turn.said[-1].text if turn.said else None
                    record.consent = ConsentChange("opt_in", method, shown)
            case Unsubscribe():
                record.consent = ConsentChange("opt_out", "flow")
            case TagFan(tag=tag, source=source):
                record.tags.append((tag, source))
                record.events.append(("tagged", {"tag": tag, "source": source}))
            case FlowStarted(flow_id=flow_id, trigger=trigger):
                turn.flow_from = (len(record.replies), len(record.events))
                record.events.append(("flow_started", {"flow": flow_id, "trigger": trigger}))
            case FlowEnded(flow_id=flow_id, outcome=outcome):
                record.events.append(("flow_ended", {"flow": flow_id, "outcome": outcome}))
            case StepTaken(flow_id=flow_id, step_id=step_id):
                record.events.append(("step", {"flow": flow_id, "step": step_id}))
            case Wait(flow_id=flow_id, step_id=step_id, delay_s=delay_s):
                # the scheduler reads these events and resumes the flow after the delay
                record.events.append(
                    ("wait", {"flow": flow_id, "step": step_id, "delay_s": delay_s})
                )

    def _action_call(self, turn: _Turn, progress: Progress) -> ActionCall:
        p = turn.prediction
        latest = {
            "text": turn.msg.body if p is None else p.text,
            "intent": {"name": p.intent, "confidence": p.confidence} if p else {},
            "entities": [
                {"entity": e.entity, "value": e.value, "start": e.start, "end": e.end}
                for e in (p.entities if p else ())
            ],
            # actions may read the fan's profile (never the phone number: fan_fields omits it)
            "metadata": {"fan": turn.ctx.contact.fan_fields()},
        }
        active = progress.state.active
        name = progress.pending_action or ""
        events: list[dict[str, Any]] = []
        if name.startswith("validate_"):
            # rasa-sdk's FormValidationAction validates the slots set since the fan's text:
            # the events after the last non-slot event (Tracker.slots_to_validate)
            events = [{"event": "user", "text": latest["text"], "parse_data": latest}]
            events += [
                {"event": "slot", "name": e["name"], "value": e["value"]}
                for kind, e in turn.record.events
                if kind == "slot_set" and e.get("name") != "requested_slot"
            ]
        return ActionCall(
            name=name,
            sender_id=str(turn.ctx.contact.id),  # never the phone number
            slots=dict(progress.state.slots),
            latest_message=latest,
            active_flow=active.flow_id if active else None,
            events=tuple(events),
            active_loop=turn.brain.engine.active_loop(progress.state.stack),
        )

    def _action_message(self, turn: _Turn, message: dict[str, Any], state: DialogueState) -> None:
        if message.get("response"):
            # values the action passes with a response fill its {placeholders}, as in Rasa
            extra = {k: v for k, v in message.items() if k not in ("response", "text", "image")}
            self._say(turn, message["response"], slots={**state.slots, **extra})
        elif message.get("text") or message.get("image"):
            media = (message["image"],) if message.get("image") else ()
            self._queue(turn, message.get("text") or "", media, None)

    def _internal_error(self, turn: _Turn, detail: str) -> None:
        record = turn.record
        record.events.append(("error", {"where": "action", "detail": detail[:200]}))
        record.replies.clear()  # nothing half-done reaches the fan
        self._say(turn, "utter_internal_error")
        self._hand_off(turn, "internal_error", "high")
        turn.ack = None  # the apology stands as it is

    def _hand_off(self, turn: _Turn, reason: str, priority: str) -> None:
        """Open an escalation, or join the one the fan is already waiting on (the store decides
        by what is in the database; the acknowledgement follows the status the turn began in)."""
        record = turn.record
        guesses = tuple(turn.prediction.ranking[:3]) if turn.prediction else ()
        due = self.escalations.due_at(priority, utcnow())
        record.escalation = EscalationSpec(reason, priority, guesses, due)
        data: dict[str, Any] = {"reason": reason, "priority": priority}
        if turn.ctx.status == "waiting":
            data["joined"] = True  # the same escalation, with one more text
        record.events.append(("escalated", data))
        turn.ack = (*turn.flow_from, len(record.replies), len(record.events))

    def _acknowledge_escalation(self, turn: _Turn) -> None:
        """One acknowledgement per hand-off, and an honest one. The escalating flow's own reply
        is it (the copy rule in domain.yml), else `utter_escalation_ack`. Already waiting: a
        short `utter_escalation_joined` instead of a second one. After hours: the flow's
        `<response>_after_hours` versions, else `utter_after_hours`, with `{team_back}`."""
        if turn.ack is None:
            return
        responses, at = turn.brain.responses, utcnow()
        said = self._ack_responses(turn)
        if turn.ctx.status == "waiting":
            names = ["utter_escalation_joined"]
        elif not self.escalations.clock.is_open(at):
            names = [f"{n}_after_hours" for n in said if f"{n}_after_hours" in responses]
            names = names or ["utter_after_hours"]
        else:
            names = [] if said else ["utter_escalation_ack"]
        names = [n for n in names if n in responses]
        if names:
            self._replace_ack(turn, names, {"team_back": self.escalations.clock.back_text(at)})

    def _ack_responses(self, turn: _Turn) -> list[str]:
        assert turn.ack is not None
        _, ev_from, _, ev_to = turn.ack
        events = turn.record.events[ev_from:ev_to]
        return [d.get("response") or "" for t, d in events if t == "utter"]

    def _replace_ack(self, turn: _Turn, names: list[str], extra: dict[str, Any]) -> None:
        """Put `names` where the escalating flow's replies were (answers around them stay)."""
        assert turn.ack is not None
        record, (r_from, ev_from, r_to, ev_to) = turn.record, turn.ack
        kept_events = [x for x in record.events[ev_from:ev_to] if x[0] != "utter"]
        later_replies, later_events = record.replies[r_to:], record.events[ev_to:]
        del record.replies[r_from:], record.events[ev_from:]
        record.events.extend(kept_events)
        slots = {**self._known_state(turn).slots, **extra}
        for name in names:
            self._say(turn, name, slots=slots)
        record.replies.extend(later_replies)
        record.events.extend(later_events)

    # ---- replies ----------------------------------------------------------------------

    def _render(self, name: str, turn: _Turn, slots: Any = None) -> RenderedResponse:
        state_slots = slots if slots is not None else self._known_state(turn).slots
        fan = self._fan(turn.ctx)
        return turn.brain.responses.render(name, state_slots, fan, random.Random(turn.message_id))

    def _say(self, turn: _Turn, name: str, *, kind: str = "reply", slots: Any = None) -> None:
        rendered = self._render(name, turn, slots)
        self._queue(turn, rendered.text, rendered.media_urls, name, kind=kind)

    def _queue(
        self,
        turn: _Turn,
        text: str,
        media: tuple[str, ...],
        response: str | None,
        *,
        kind: str = "reply",
    ) -> None:
        if not text and not media:
            return
        turn.record.replies.append(
            OutboundSms(to=turn.msg.sender, body=text, media_urls=media,
                        sender=turn.msg.recipient or None, kind=kind)
        )  # fmt: skip
        turn.record.events.append(("utter", {"response": response}))


# slots whose values belong on the fan's profile, not only in the conversation
PROFILE_SLOTS = {"first_name": "first_name", "birthday": "birthday", "zip": "zip",
                 "email": "email", "country": "country"}  # fmt: skip


def _intent_event(p: Prediction) -> dict[str, Any]:
    return {
        "intent": p.intent,
        "confidence": round(p.confidence, 4),
        "ranking": [[name, round(conf, 4)] for name, conf in p.ranking[:3]],
        "entities": [e.entity for e in p.entities],
    }


def _stored_inbound(text: PendingText, ctx: TurnContext) -> InboundSms:
    """An earlier text as it was stored (the current webhook's own fields are not its own)."""
    return InboundSms(
        channel_id=text.channel_id, sender=ctx.contact.phone or "", recipient=text.recipient,
        body=text.body, received_at=text.received_at,
    )  # fmt: skip


def _method(decision: compliance.Decision) -> str:
    return "provider" if decision.provider_handled else "sms_keyword"
