"""The flow engine: one fan turn in, commands out (step 7 of the message path). Pure.

`FlowEngine.turn(state, input)` decides what the fan's text means for the flows in progress:
(a) an event (first contact, reply to a broadcast) starts the flows listening to it; (b) a
question is waiting: the text answers it only when it fits the slot (`bot.flows.listening`); a
way out ("never mind") cancels, a sure other request or a question of the fan's own interrupts
it (answered or handed over, then asked again), anything else is re-asked (then handed to a
human past `max_retries`); (c) nothing is waiting: a keyword, an
intent, a retrieval intent or a pattern answers. Steps then run until the engine waits for the
fan, stops at a custom action (`Progress.pending_action`; the pipeline runs it and calls
`resume`) or the stack is empty. A step budget per turn turns endless loops into
`pattern_internal_error`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.errors import ConfigError
from bot.flows import disambiguation as dis
from bot.flows import listening
from bot.flows import triggers as t
from bot.flows.conditions import evaluate
from bot.flows.model import END, CollectStep, Domain, Flow, NextIf, Slot, StepBase
from bot.flows.reactions import Reaction, Reactions, default_reactions
from bot.flows.responses import Responses
from bot.flows.slot_types import parse_bool, parse_slot_value
from bot.flows.state import (
    Command,
    DialogueState,
    FlowEnded,
    FlowStarted,
    Frame,
    HandOff,
    Progress,
    RunAction,
    Say,
    SetSlot,
    StepTaken,
    Subscribe,
    TagFan,
    TurnInput,
    Unsubscribe,
    Wait,
)
from bot.messages import Prediction
from bot.nlu.evidence import NEWS_BAR, asks_about_news, written_for

MAX_STEPS_PER_TURN = 64
REPHRASE = "utter_ask_rephrase"
# Slot types that accept (nearly) any text: a keyword ("TOUR" is not a fan's name), a sure other
# request or a question of the fan's own is not their answer, whatever the type would take.
FREE_TEXT_TYPES = {"text", "any", "person_name"}
# ... and where a keyword beats a value that fits ("TOUR" also looks like a code)
KEYWORD_TYPES = FREE_TEXT_TYPES | {"code"}
# Reaction kinds that still answer a waiting question (flows may branch on them or the intent).
ANSWER_REACTIONS = {"yes", "no"}


class FlowEngine:
    def __init__(
        self,
        flows: Mapping[str, Flow],
        domain: Domain,
        *,
        default_threshold: float = 0.5,
        max_steps: int = MAX_STEPS_PER_TURN,
        reactions: Reactions | None = None,
        disambiguation: dis.Disambiguation | None = None,
    ) -> None:
        self.flows = dict(flows)
        self.threshold = default_threshold
        self.disambiguation = disambiguation or dis.Disambiguation()
        self.reactions = reactions if reactions is not None else default_reactions()
        self.domain = domain
        self.responses = Responses(domain)
        self.triggers = t.Triggers(self.flows, default_threshold)
        self.max_steps = max_steps
        self.initial_slots = {
            name: slot.initial_value
            for name, slot in domain.slots.items()
            if slot.initial_value is not None
        }
        # answers taught from the replies to one broadcast (`metadata: broadcast:`): its news
        self.written_for = {
            name: str(v.metadata["broadcast"])
            for name, variants in domain.responses.items()
            for v in variants[:1]
            if v.metadata and v.metadata.get("broadcast")
        }

    def turn(self, state: DialogueState, inp: TurnInput) -> Progress:
        if (payload := t.payload_prediction(inp.text)) is not None:
            inp = replace(inp, prediction=payload)  # a Rasa button: its intent, not the NLU's
        run = _Turn(self, state, inp, new_text=True)
        if run.dispatch():
            run.run()
        return run.progress()

    def judge(self, prediction: Prediction | None) -> tuple[str | None, bool]:
        """(what a sure single-step answer to this reading would be, or None; whether the
        reading is confidently something a person must see). For several questions in a text."""
        if prediction is None or not prediction.intent or not prediction.ranking:
            return None, False
        flows = [
            self.flows[f]
            for f, _ in self.triggers.by_intent(prediction)
            if f in self.flows and self.flows[f].if_ is None
        ]
        hands_off = any(_escalates(flow) for flow in flows) or (
            prediction.intent == "human_handoff"
        )
        margin = self.disambiguation
        sure = prediction.confidence >= self.threshold + margin.grey_zone and not dis.close_call(
            prediction, self.threshold, margin, lambda intent: intent
        )
        if not sure or hands_off:
            return None, hands_off
        if prediction.retrieval_intent:
            name = f"utter_{prediction.retrieval_intent}"
            return (name if name in self.responses else None), False
        answers = [f for f in flows if not f.is_pattern and _single_answer(f)]
        return (answers[0].id if answers else None), False

    def start_timed(
        self, state: DialogueState, flow_id: str, inp: TurnInput, *, after_step: str | None = None
    ) -> Progress:
        """Start a timed flow (or go on after its `wait` step `after_step`) on top of whatever
        the fan is in; a question it interrupts is asked again once it ends. A flow already
        in progress, or whose `if` does not hold for the fan, is not started (no commands)."""
        run = _Turn(self, state, inp)
        trigger = f"wait:{after_step}" if after_step else "timed"
        if run._startable([(flow_id, trigger)]) is None:
            return run.progress()
        run.interrupt(flow_id, trigger)
        if after_step is not None:
            run.stack[-1] = replace(run.stack[-1], step_id=after_step)
        run.run()
        return run.progress()

    def active_loop(self, stack: Sequence[Frame]) -> str | None:
        """The Rasa form in progress (`tracker.active_loop`): the topmost frame that is one of
        the domain's `forms:` (an imported form's flow), else None."""
        forms = self.domain.forms or {}
        return next((f.flow_id for f in reversed(stack) if f.flow_id in forms), None)

    def resume(
        self,
        state: DialogueState,
        slot_events: Mapping[str, Any],
        inp: TurnInput,
        events: Sequence[Mapping[str, Any]] = (),
    ) -> Progress:
        """Continue after the custom action the last Progress stopped at returned its slots
        (and its other Rasa events: `followup`, `active_loop`)."""
        run = _Turn(self, state, inp)
        for name, value in slot_events.items():
            run.set_slot(name, value)
            if value is None:  # an action rejected the value (a form's validate_<slot>)
                run.rejected.add(name)
        going = True
        for event in events:
            going = run.rasa_event(event) and going
        if going:
            run.run()
        return run.progress()


class _EngineFault(Exception):
    """Content the validator should have caught (unknown step, flow or response) met at run time."""


class _Turn:
    """The mutable working copy of one turn; `progress()` freezes it back into values."""

    def __init__(
        self, engine: FlowEngine, state: DialogueState, inp: TurnInput, *, new_text: bool = False
    ) -> None:
        self.engine = engine
        self.flows = engine.flows
        self.inp = inp
        self.stack = list(state.stack)
        self.slots = dict(state.slots)
        # entities of this text (age 0) and the last ones: a city said before "1" still counts
        self.recent = (
            listening.remember(state.recent, inp.prediction, inp.text) if new_text else state.recent
        )
        self.commands: list[Command] = []
        self.rng = random.Random(inp.seed)
        self.budget = engine.max_steps
        self.failed = False
        self.pending_action: str | None = None
        # slots an action just emptied: not filled again from the same text's entities
        self.rejected: set[str] = set()
        # emoji, symbols or filler words only: answered by pattern_reaction, never a guess
        self.reaction: Reaction | None = (
            engine.reactions.classify(inp.text) if not inp.num_media else None
        )

    # ------------------------------------------------------------ dispatch (a), (b), (c)

    def dispatch(self) -> bool:
        """Start or feed flows for this input; True when steps should run."""
        if self.inp.event and (
            found := self._startable(self.engine.triggers.by_event(self.inp.event))
        ):
            if self.inp.event == "first_contact":
                return self.first_contact(*found)
            return self.interrupt(*found)
        if self.inp.event == "broadcast_reply" and (found := self.broadcast_ask()):
            return self.interrupt(*found)
        waiting = self.waiting_collect()
        if waiting is not None and self.stack[-1].flow_id == t.DISAMBIGUATE_FLOW:
            return self.resolve_which()
        if waiting is not None:
            return self.answer(waiting)
        return self.unprompted()

    def first_contact(self, flow_id: str, trigger: str) -> bool:
        """Answer what the first text asks, then run the first-contact flow (the opt-in).

        The event's flow is queued under the answer (a frame not started yet), so it runs once
        the answer is done, or once a question the answer asks is settled.
        """
        answer = None if self.reaction else self.match_trigger()  # "lol" first: just the flow
        self.start(flow_id, trigger)
        if answer is not None and answer[0] != flow_id:
            return self.start(*answer)
        prediction = self.inp.prediction
        if prediction and prediction.retrieval_intent:
            name = f"utter_{prediction.retrieval_intent}"
            if name in self.engine.responses:
                self.say(name)
        return True

    def broadcast_ask(self) -> tuple[str, str] | None:
        """A yes ("yes!!", "👍") to a broadcast that said "Reply VIP": what it asked for."""
        if parse_bool(self.inp.text, self.inp.prediction) is not True:
            return None
        return self._startable(self.engine.triggers.asked_in(self.inp.broadcast_text))

    def unprompted(self) -> bool:
        if found := self._startable(self.engine.triggers.by_keyword(self.inp.text)):
            return self.interrupt(*found)
        if self.reaction is not None and t.REACTION_FLOW in self.flows:
            if own := self.own_sure_flow():  # "Awesome, thanks!" to a line with a thank flow
                return self.interrupt(*own)
            return self.start(t.REACTION_FLOW, f"reaction:{self.reaction.kind}")
        if t.DISAMBIGUATE_FLOW in self.flows and (
            options := dis.close_call(
                self.inp.prediction, self.engine.threshold, self.engine.disambiguation, self.target
            )
        ):
            return self.ask_which(options)
        return self.by_intent()

    def own_sure_flow(self) -> tuple[str, str] | None:
        """A line's own flow (not a pattern) that a sure intent starts, if any."""
        p = self.inp.prediction
        if p is None or p.confidence < self.engine.threshold + self.engine.disambiguation.grey_zone:
            return None
        if not any(c.isalpha() for c in self.inp.text) or p.intent in ("out_of_scope", None):
            return None  # emoji and symbols: the NLU's guess means nothing
        found = self._startable(self.engine.triggers.by_intent(p))
        return found if found and not self.flows[found[0]].is_pattern else None

    def by_intent(self) -> bool:
        if self.asks_about_news():
            return self.start(t.CANNOT_HANDLE_FLOW, "pattern")
        if found := self._startable(self.engine.triggers.by_intent(self.inp.prediction)):
            return self.interrupt(*found)
        prediction = self.inp.prediction
        if prediction and prediction.retrieval_intent:
            name = f"utter_{prediction.retrieval_intent}"
            if name in self.engine.responses:
                self.say(name)
                # a queued flow (first contact) runs next; a question left waiting keeps waiting
                return bool(self.stack) and self.waiting_collect() is None
        if prediction and prediction.intent == "human_handoff" and t.HANDOFF_FLOW in self.flows:
            return self.start(t.HANDOFF_FLOW, "intent:human_handoff")
        if self.stray_answer():
            return self.start(t.REACTION_FLOW, f"reaction:{self.reaction.kind}")  # type: ignore[union-attr]
        return self.start(t.CANNOT_HANDLE_FLOW, "pattern")

    def asks_about_news(self) -> bool:
        """A question about the news of the broadcast it replies to: a generic answer does not
        know that news, so only a sure intent that speaks of all its words answers it, or one
        whose answer was taught from that broadcast's replies; else a person (its topic)."""
        p = self.inp.prediction
        if p is None or p.intent in (None, "out_of_scope", "human_handoff"):
            return False
        unsure = p.confidence < NEWS_BAR or bool(p.uncovered)
        if not unsure or not asks_about_news(self.inp.text, self.inp.broadcast_text):
            return False
        return not self.knows_the_news()

    def knows_the_news(self) -> bool:
        """Whether the intent's flow answers with a response taught from the replies to the
        broadcast this text replies to (it knows that news)."""
        for flow_id, _ in self.engine.triggers.by_intent(self.inp.prediction):
            for step in getattr(self.flows.get(flow_id), "steps", ()):
                recorded = self.engine.written_for.get(getattr(step, "action", None) or "")
                if written_for(self.inp.broadcast_text, recorded):
                    return True
        return False

    def stray_answer(self) -> bool:
        """'Yes I want in', 'no thanks', 'never mind' with nothing asked: the reaction kinds
        `yes`, `no`, `nevermind` answer them (a nudge), never a person."""
        prediction = self.inp.prediction
        kind = _STRAY_INTENTS.get(prediction.intent or "") if prediction else None
        known = self.engine.reactions.kinds.get(kind or "")
        if known is None or t.REACTION_FLOW not in self.flows:
            return False
        if prediction.confidence < self.engine.threshold:  # type: ignore[union-attr]
            return False
        self.reaction = Reaction(known.name, known.reply)
        return True

    # ------------------------------------------------------------ close calls

    def target(self, intent: str) -> str | None:
        """What an intent (full name) would start, when it can be offered as an option."""
        if "/" in intent:
            name = f"utter_{intent}"
            return name if name in self.engine.responses else None
        prediction = Prediction(text=self.inp.text, intent=intent, confidence=1.0)
        for flow_id, _ in self.engine.triggers.by_intent(prediction):
            flow = self.flows.get(flow_id)
            if flow is not None and not flow.is_pattern and (flow.label or flow.name):
                return flow_id if self._startable([(flow_id, "")]) else None
        return None

    def label(self, intent: str) -> str:
        target = self.target(intent)
        flow = self.flows.get(target or "")
        return (flow.label or flow.name or "") if flow else dis.humanise(intent)

    def ask_which(self, options: list[str]) -> bool:
        self.set_slot(dis.OPTIONS_SLOT, options)
        for slot, intent in zip(dis.LABEL_SLOTS, options, strict=False):
            self.set_slot(slot, self.label(intent))
        return self.start(t.DISAMBIGUATE_FLOW, "pattern")

    def resolve_which(self) -> bool:
        """The fan's answer to "Did you mean 1) ... or 2) ...?"; anything else is a new turn."""
        options = list(self.slots.get(dis.OPTIONS_SLOT) or [])
        labels = [str(self.slots.get(slot) or "") for slot in dis.LABEL_SLOTS]
        index = dis.chosen(self.inp.text, options, labels, self.inp.prediction)
        self.end_top("answered" if index is not None else "abandoned", quiet=True)
        for slot in (dis.OPTIONS_SLOT, dis.CHOICE_SLOT, *dis.LABEL_SLOTS):
            if slot in self.slots:
                self.set_slot(slot, None)
        if index is None:
            return self.dispatch()
        intent = options[index]
        chosen = Prediction(
            text=self.inp.text,
            intent=dis.base(intent),
            confidence=1.0,
            ranking=((intent, 1.0),),
            retrieval_intent=intent if "/" in intent else None,
        )
        self.inp = replace(self.inp, prediction=chosen)
        return self.by_intent()

    def answer(self, step: CollectStep) -> bool:
        """The fan's text while `step` waits: its answer only when it fits the slot. A way out
        leaves; a keyword, a reaction, a sure other request or a question of the fan's own is
        answered (or handed over) and the step asked again; anything else is re-asked."""
        slot = self.engine.domain.slots.get(step.collect)
        loose = slot is None or slot.type in FREE_TEXT_TYPES
        value, named = self.fill(step)
        if (found := self.cancel_request(fits=value is not None and not loose)) is not None:
            return self.interrupt(*found)  # "actually never mind": never a value, never STOP
        keyword = self._startable(self.engine.triggers.by_keyword(self.inp.text))
        # "😂" is not a name; a bare "yes"/"no" is still an answer to a free-text question
        answerish = self.reaction is not None and (
            self.reaction.kind in ANSWER_REACTIONS or self.expects_intent(step)
        )
        noise = bool(keyword) or (self.reaction is not None and not answerish)
        keyword_wins = slot is None or slot.type in KEYWORD_TYPES
        question = listening.is_question(self.inp.text)
        taken = value is not None and not (noise and keyword_wins)
        # a retrieval intent the step branches on (an imported story's faq turn) is its answer
        story_faq = bool(self.faq()) and self.expects_intent(step)
        # so is a sure intent the step branches on ("how was the show?" -> a complaint)
        expected = story_faq or self.expects_intent(step)
        if taken and (named or not loose or expected or not (question or self.sure_elsewhere())):
            rejection = self.rejection(step, value)
            if rejection is None:
                self.set_slot(step.collect, value)
                return True
            return self.retry(step, rejection)
        if keyword:
            return self.interrupt(*keyword)
        if self.reaction is not None and t.REACTION_FLOW in self.flows:
            # no retry counted: the question is asked again once the pattern ends
            return self.interrupt(t.REACTION_FLOW, f"reaction:{self.reaction.kind}")
        # a question of the fan's own is read as if nothing waited; anything else must be sure
        if question or self.sure():
            if found := self._startable(self.engine.triggers.by_intent(self.inp.prediction)):
                return self.interrupt(*found)
            if (faq := self.faq()) is not None:
                self.say(faq)
                return self.reask(step)
        if question or self.asked_enough(step):
            # the question stays open, but this text is about something else
            self.stack[-1] = replace(self.stack[-1], interrupted=True)
            return self.unprompted()
        invalid = f"utter_invalid_{step.collect}"
        return self.retry(step, invalid if invalid in self.engine.responses else REPHRASE)

    def expects_intent(self, step: CollectStep) -> bool:
        """The step branches on this text's sure intent ("Ok" where the story expects affirm)."""
        p = self.inp.prediction
        if p is None or not p.intent or not isinstance(step.next, list) or not self.sure():
            return False
        wanted = f"intent.name == '{p.intent}'"
        return any(isinstance(b, NextIf) and wanted in str(b.if_) for b in step.next)

    def sure(self) -> bool:
        engine = self.engine
        return listening.sure(self.inp.prediction, engine.threshold, engine.disambiguation)

    def faq(self) -> str | None:
        """The response of the text's retrieval intent, when the content has one."""
        prediction = self.inp.prediction
        name = f"utter_{prediction.retrieval_intent}" if prediction else ""
        return (
            name
            if prediction and prediction.retrieval_intent and name in self.engine.responses
            else None
        )

    def sure_elsewhere(self) -> bool:
        """The NLU is sure the text asks for something else: a flow it starts or an FAQ."""
        if not self.sure():
            return False
        started = self._startable(self.engine.triggers.by_intent(self.inp.prediction))
        return started is not None or self.faq() is not None

    def cancel_request(self, *, fits: bool) -> tuple[str, str] | None:
        """`pattern_cancel_flow`, when the text is a way out: one of its keywords among filler
        words ("actually never mind", "forget it lol"), or (unless the text fits a typed slot:
        "no thanks" answers a yes/no question) the NLU sure of an intent that starts it."""
        if t.CANCEL_FLOW not in self.flows:
            return None
        if said := listening.cancels(self.inp.text, self.flows[t.CANCEL_FLOW].keywords):
            return self._startable([(t.CANCEL_FLOW, f"keyword:{said}")])
        prediction = self.inp.prediction
        by_intent = self.engine.triggers.by_intent(prediction)
        if fits or not self.sure() or all(f != t.CANCEL_FLOW for f, _ in by_intent):
            return None
        return self._startable([(t.CANCEL_FLOW, f"intent:{prediction.intent}")])  # type: ignore[union-attr]

    def fill(self, step: CollectStep) -> tuple[Any, bool]:
        """(the value this text gives the step's slot or None, whether an NLU entity of the
        slot said so)."""
        slot = self.engine.domain.slots.get(step.collect)
        if slot is None:
            return self.inp.text.strip() or None, False
        prediction = self.inp.prediction
        names = self.entity_names(step.collect, slot)
        for entity in prediction.entities if prediction else ():
            if entity.entity in names and entity.value is not None:
                value = self.entity_value(slot, entity.entity, entity.value)
                if value is not None:
                    return value, True
        return parse_slot_value(slot, self.inp.text, prediction=prediction), False

    def prefill(self, flow: Flow) -> None:
        """An imported Rasa form as it activates: its empty slots that an entity of the text
        fills (their `from_entity` mappings), as Rasa runs action_extract_slots at activation
        ("i want to transfer money to Latisha": PERSON), before it validates and asks."""
        prediction = self.inp.prediction
        if prediction is None or not prediction.entities:
            return
        for step in flow.steps:
            if not isinstance(step, CollectStep):
                continue
            slot = self.engine.domain.slots.get(step.collect)
            if slot is None or self.slot_values().get(step.collect) is not None:
                continue
            names = self.entity_names(step.collect, slot)
            for entity in prediction.entities:
                if entity.entity not in names or entity.value is None:
                    continue
                if (value := self.entity_value(slot, entity.entity, entity.value)) is not None:
                    self.set_slot(step.collect, value)
                    break

    def entity_names(self, name: str, slot: Slot) -> set[str]:
        """Entities that fill slot `name`: its own name, its Rasa `from_entity` mappings, and
        for a `location` the usual place entities (city, zip, GPE ...)."""
        names = {name}
        for mapping in slot.mappings or ():
            if isinstance(mapping, dict) and mapping.get("type") == "from_entity":
                names.add(str(mapping.get("entity") or name))
        if slot.type == "location":
            names |= listening.LOCATION_ENTITIES
        return names

    @staticmethod
    def entity_value(slot: Slot, entity: str, raw: Any) -> Any:
        value = parse_slot_value(slot, str(raw))
        place = slot.type == "location" and entity not in listening.POSTAL_ENTITIES
        if value is None and place and str(raw).strip():
            value = str(raw).strip().title()  # a place the line's own NLU knows (its lookups)
        return value

    def rejection(self, step: CollectStep, value: Any) -> str | None:
        context = self.context(slots={**self.slot_values(), step.collect: value})
        for rejection in step.rejections:
            if evaluate(rejection.if_, context):
                return rejection.utter
        return None

    def retry(self, step: CollectStep, utter: str) -> bool:
        frame = self.stack[-1]
        if frame.retries + 1 > step.max_retries:
            self.stack[-1] = replace(frame, retries=0)
            return self.start(t.HANDOFF_FLOW, "pattern", reason="retry_limit")
        self.stack[-1] = replace(frame, retries=frame.retries + 1)
        self.say(utter)
        return self.ask(step)

    def match_trigger(self) -> tuple[str, str] | None:
        candidates = self.engine.triggers.by_keyword(self.inp.text)
        candidates += self.engine.triggers.by_intent(self.inp.prediction)
        return self._startable(candidates)

    def _startable(self, candidates: list[tuple[str, str]]) -> tuple[str, str] | None:
        running = {frame.flow_id for frame in self.stack}
        for flow_id, label in candidates:
            flow = self.flows.get(flow_id)
            if flow is None or flow_id in running:
                continue
            if flow_id == t.CANCEL_FLOW and not self.stack:
                continue  # nothing to cancel
            if flow.if_ is None or evaluate(flow.if_, self.context()):
                return flow_id, label
        return None

    def rasa_event(self, event: Mapping[str, Any]) -> bool:
        """What Rasa does with a custom action's `FollowupAction(name)` (run it next) and
        `ActiveLoop(name)` (that form is now the active loop; `None`: none is). A flow (an
        imported form) already in progress is gone back to, the flows above it ending, and it
        asks again; another starts on top, and the flow that ran the action goes on once it
        ends; a response is said; `ActiveLoop(None)` ends the form in progress, and what ran
        it goes on. Anything else (Rasa's own actions, LoopInterrupted...) changes nothing.
        False when a question now waits (nothing more runs this turn)."""
        kind, name = event.get("event"), event.get("name")
        if kind == "active_loop" and name is None:
            loop = self.engine.active_loop(self.stack)
            index = next((i for i in range(len(self.stack) - 1, -1, -1)
                          if self.stack[i].flow_id == loop), None)  # fmt: skip
            if index is not None:
                self.commands.append(FlowEnded(self.stack.pop(index).flow_id, "deactivated"))
            return True
        if kind not in ("followup", "active_loop") or not isinstance(name, str):
            return True
        if name not in self.flows:
            if kind == "followup" and name.startswith("utter_") and name in self.engine.responses:
                self.say(name)
            return True
        if not any(frame.flow_id == name for frame in self.stack):
            return self.start(name, f"followup:{name}")
        while self.stack[-1].flow_id != name:  # back to it
            self.end_top("followup", quiet=True)
        self.stack[-1] = replace(self.stack[-1], interrupted=False)
        step = self.waiting_collect()
        if step is None:
            return True
        if self.slot_values().get(step.collect) is None:
            self.ask(step)
        return False

    def interrupt(self, flow_id: str, trigger: str) -> bool:
        if self.waiting_collect() is not None:
            self.stack[-1] = replace(self.stack[-1], interrupted=True)
        return self.start(flow_id, trigger)

    # ------------------------------------------------------------ running steps

    def run(self) -> None:
        while self.stack:
            if self.budget <= 0:
                self.internal_error()
                continue
            try:
                if not self.step_once():
                    return
            except (_EngineFault, ConfigError, KeyError):
                self.internal_error()

    def step_once(self) -> bool:
        frame = self.stack[-1]
        flow = self.flow(frame.flow_id)
        step_id = self.next_step_id(flow, frame)
        if step_id == END:
            return self.end_top("completed")
        try:
            step = flow.step(step_id)
        except KeyError:
            raise _EngineFault(f"flow {flow.id}: no step {step_id}") from None
        self.budget -= 1
        self.stack[-1] = frame.taken(step_id)
        self.commands.append(StepTaken(flow.id, step_id))
        return self.execute(flow, step)

    def next_step_id(self, flow: Flow, frame: Frame) -> str:
        if frame.step_id is None:
            return flow.steps[0].step_id
        index = flow.index(frame.step_id)
        step = flow.steps[index]
        sequential = flow.steps[index + 1].step_id if index + 1 < len(flow.steps) else END
        if step.next is None:
            return sequential
        if isinstance(step.next, str):
            return step.next
        context = self.context()
        for branch in step.next:
            if not isinstance(branch, NextIf):
                return branch.else_
            if evaluate(branch.if_, context):
                return branch.then
        return sequential  # no branch matched and no `else`: carry on in order

    def execute(self, flow: Flow, step: StepBase) -> bool:
        """Take one step; True to keep going, False when the engine must stop for now."""
        if isinstance(step, CollectStep):
            return self.enter_collect(step)
        kind = step.kind
        if kind == "action":
            return self.action(step.action)  # type: ignore[attr-defined]
        if kind == "set_slots":
            for name, value in step.assignments:  # type: ignore[attr-defined]
                self.set_slot(name, value)
        elif kind == "link":
            if any(f.flow_id == step.link for f in self.stack[:-1]):  # type: ignore[attr-defined]
                # already in progress underneath (an interruption): back to it, not a restart
                return self.end_top("linked")
            self.end_top("linked", quiet=True)
            return self.start(step.link, f"link:{flow.id}")  # type: ignore[attr-defined]
        elif kind == "call":
            return self.start(step.call, f"call:{flow.id}")  # type: ignore[attr-defined]
        elif kind == "escalate":
            reason = self.stack[-1].reason or step.escalate.reason  # type: ignore[attr-defined]
            self.commands.append(HandOff(reason, step.escalate.priority))  # type: ignore[attr-defined]
            self.end_all("escalated", keep_queued=True)
            return bool(self.stack)  # a queued flow (first contact's opt-in) still runs
        elif kind == "tag":
            self.commands.append(TagFan(step.tag, "flow"))  # type: ignore[attr-defined]
        elif kind == "wait":  # the flow steps aside; the scheduler starts it again after
            delay = step.wait.total_seconds()  # type: ignore[attr-defined]
            self.commands.append(Wait(flow.id, step.step_id, delay))
            return self.end_top("waiting")
        return True

    def enter_collect(self, step: CollectStep) -> bool:
        if self.slot_values().get(step.collect) is not None and not step.ask_before_filling:
            return True
        if (
            self.slots.get(step.collect) is None
            and step.collect not in self.rejected
            and (value := self._entity_value(step)) is not None
        ):
            self.set_slot(step.collect, value)  # the same text already carried the answer
            return True
        return self.ask(step)

    def _entity_value(self, step: CollectStep) -> Any:
        """A value for the step's slot from the entities of this text or the last few ("PLEASE
        come to Denver" -> "1" -> the shows-near-me flow's location is Denver)."""
        slot = self.engine.domain.slots.get(step.collect)
        if slot is None:
            return None
        names = self.entity_names(step.collect, slot)
        for entity in self.recent:
            if entity.get("entity") in names and entity.get("value") is not None:
                value = self.entity_value(slot, entity["entity"], entity["value"])
                if value is not None:
                    return value
        return None

    def ask(self, step: CollectStep) -> bool:
        if step.max_asks != 0:  # 0: the step before asked (a custom action), wait for the answer
            self.say(step.question)
        frame = self.stack[-1]
        self.stack[-1] = replace(frame, asks=frame.asks + 1, quiet=0)
        return False

    def reask(self, step: CollectStep) -> bool:
        """Ask again after an interruption, as often as the step allows; else wait quietly."""
        frame = self.stack[-1]
        if self.reaction is not None and self.reaction.kind == "question":
            return self.ask(step)  # "?": the fan wants the question again, whatever the caps
        if self.asked_enough(step) or frame.quiet + 1 < step.reask_every:
            self.stack[-1] = replace(frame, quiet=frame.quiet + 1)
            return False
        return self.ask(step)

    def asked_enough(self, step: CollectStep) -> bool:
        return step.max_asks is not None and self.stack[-1].asks >= step.max_asks

    def action(self, name: str) -> bool:
        if name.startswith("utter_") and self.engine.responses.is_retrieval(name):
            self.say_retrieval(name)
        elif name.startswith("utter_"):
            self.say(name)
        elif name == "action_subscribe":
            self.commands.append(Subscribe("sms_keyword"))
        elif name == "action_unsubscribe":
            self.commands.append(Unsubscribe())
        elif name == "action_cancel_flow":
            while len(self.stack) > 1:  # everything under the cancel pattern itself
                self.commands.append(FlowEnded(self.stack.pop(-2).flow_id, "cancelled"))
        elif name == "action_react":
            self.react()
        elif name != "action_listen":
            self.commands.append(RunAction(name))
            self.pending_action = name
            return False
        return True

    def say_retrieval(self, name: str) -> None:
        """A retrieval action (an imported Rasa story's `utter_faq`): the response of the
        text's retrieval intent, `utter_faq/<key>`; nothing when the text has none of that
        intent (the story's turn took a button or another intent)."""
        prediction = self.inp.prediction
        key = f"utter_{prediction.retrieval_intent}" if prediction else ""
        if prediction and prediction.retrieval_intent and key.startswith(f"{name}/"):
            self.say(key)  # the key's response exists: faq() found it or validate required it

    def react(self) -> None:
        """A reaction's light reply; silent when its kind has none or a question is pending
        (the question itself is asked again, which is reply enough)."""
        if self.reaction is None or any(frame.interrupted for frame in self.stack):
            return
        reply = self.reaction.reply
        if (
            reply
            and self.inp.event == "broadcast_reply"
            and f"{reply}_broadcast" in self.engine.responses
        ):
            reply = f"{reply}_broadcast"  # "yes!!" to a broadcast that named no keyword
        if reply is not None and reply not in self.engine.responses:
            reply = "utter_reaction_unknown"
        if reply is not None and reply in self.engine.responses:
            self.say(reply)

    # ------------------------------------------------------------ flows in and out

    def start(self, flow_id: str, trigger: str, *, reason: str | None = None) -> bool:
        self.flow(flow_id)
        self.budget -= 1
        self.stack.append(Frame(flow_id, reason=reason))
        self.commands.append(FlowStarted(flow_id, trigger))
        if flow_id in (self.engine.domain.forms or {}):
            self.prefill(self.flow(flow_id))
        tag = self.flow(flow_id).tag
        if tag is not None:
            source = "keyword" if trigger.startswith("keyword:") else "flow"
            self.commands.append(TagFan(tag, source))
        return True

    def end_top(self, outcome: str, *, quiet: bool = False) -> bool:
        """Pop the top flow; then carry on with whatever is under it. `quiet`: no follow-up."""
        frame = self.stack.pop()
        flow = self.flow(frame.flow_id)
        self.commands.append(FlowEnded(flow.id, outcome))
        self.forget_slots(flow)
        if quiet:
            return True
        if not self.stack:
            if outcome == "completed" and not flow.is_pattern and t.COMPLETED_FLOW in self.flows:
                return self.start(t.COMPLETED_FLOW, "pattern")
            return False
        below = self.stack[-1]
        if below.interrupted:
            self.stack[-1] = replace(below, interrupted=False)
            return self.start(t.CONTINUE_FLOW, "pattern") if t.CONTINUE_FLOW in self.flows else True
        step = self.flow(below.flow_id).step(below.step_id) if below.step_id else None
        if isinstance(step, CollectStep) and self.slot_values().get(step.collect) is None:
            return self.reask(step)  # back from an interruption: ask the pending question again
        return True

    def end_all(self, outcome: str, *, keep_queued: bool = False) -> None:
        """End every flow; with `keep_queued`, flows queued but not started yet stay."""
        while self.stack and not (keep_queued and self.stack[-1].step_id is None):
            self.commands.append(FlowEnded(self.stack.pop().flow_id, outcome))

    def internal_error(self) -> None:
        self.end_all("error")
        if self.failed or t.INTERNAL_ERROR_FLOW not in self.flows:
            self.commands.append(HandOff("internal_error", "high"))
            return
        self.failed = True
        self.budget = self.engine.max_steps
        self.start(t.INTERNAL_ERROR_FLOW, "pattern")

    def forget_slots(self, flow: Flow) -> None:
        if flow.persisted_slots is None:
            return
        for name in _slots_written(flow) - set(flow.persisted_slots):
            if self.slots.get(name) is not None:
                self.set_slot(name, None)

    def flow(self, flow_id: str) -> Flow:
        try:
            return self.flows[flow_id]
        except KeyError:
            raise _EngineFault(f"unknown flow {flow_id}") from None

    # ------------------------------------------------------------ values

    def waiting_collect(self) -> CollectStep | None:
        frame = self.stack[-1] if self.stack else None
        if frame is None or frame.step_id is None or frame.flow_id not in self.flows:
            return None
        try:
            step = self.flows[frame.flow_id].step(frame.step_id)
        except KeyError:
            return None  # content changed under a stored conversation
        return step if isinstance(step, CollectStep) else None

    def set_slot(self, name: str, value: Any) -> None:
        if value is None:
            self.slots.pop(name, None)
        else:
            self.slots[name] = value
        self.commands.append(SetSlot(name, value))

    def slot_values(self) -> dict[str, Any]:
        return {**self.engine.initial_slots, **self.slots}

    def context(self, *, slots: Mapping[str, Any] | None = None) -> dict[str, Any]:
        prediction = self.inp.prediction
        return {
            "slots": self.slot_values() if slots is None else slots,
            "fan": self.inp.fan,
            "message": {
                "text": self.inp.text,
                "num_media": self.inp.num_media,
                # the entities of the fan's latest text, by name (the first value of each)
                "entities": _entities(prediction),
                "reaction": self.reaction.kind if self.reaction else None,
            },
            "intent": {
                "name": prediction.intent if prediction else None,
                "confidence": prediction.confidence if prediction else 0.0,
            },
            "active_loop": {"name": self.engine.active_loop(self.stack)},
        }

    def say(self, name: str) -> None:
        if name not in self.engine.responses:
            raise _EngineFault(f"unknown response {name}")
        rendered = self.engine.responses.render(name, self.slot_values(), self.inp.fan, self.rng)
        self.commands.append(Say(rendered.text, rendered.media_urls, name))

    def progress(self) -> Progress:
        state = DialogueState(tuple(self.stack), self.slots, self.recent)
        return Progress(state, tuple(self.commands), self.pending_action)


# Intents that, when nothing is asked and no flow takes them, are a reaction of this kind.
_STRAY_INTENTS = {"affirm": "yes", "deny": "no", "cancel": "nevermind"}


def _entities(prediction: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entity in prediction.entities if prediction else ():
        found.setdefault(entity.entity, entity.value)
    return found


def _slots_written(flow: Flow) -> set[str]:
    written: set[str] = set()
    for step in flow.steps:
        if isinstance(step, CollectStep):
            written.add(step.collect)
        elif step.kind == "set_slots":
            written.update(name for name, _ in step.assignments)  # type: ignore[attr-defined]
    return written


def _single_answer(flow: Flow) -> bool:
    """FAQ-style: the flow only says responses (no question, action, link or hand-off)."""
    return all(
        step.kind == "action" and step.action.startswith("utter_") and step.next is None  # type: ignore[attr-defined]
        for step in flow.steps
    )


def _escalates(flow: Flow) -> bool:
    return any(step.kind == "escalate" for step in flow.steps)
