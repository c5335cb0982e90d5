"""Rasa forms, rules and stories -> Fanline flows (plain dicts, written by the importer).

Pure: takes parsed stories (`bot.rasa.stories`) and the Rasa domain as a dict, returns flows,
the helper slots they need, and an `ImportReport` entry for every part, with file and line.
A form becomes a flow of `collect` steps; a rule `intent -> actions` a flow triggered by the
intent; stories sharing their first intent merge into one flow whose later turns are
`collect` steps answered by the fan, branching on the intent of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from bot.nlu.data import OUT_OF_SCOPE
from bot.rasa.report import ImportReport
from bot.rasa.stories import Story, StoryStep

# Rasa's own actions, as Fanline does them (None: nothing to run). The fallbacks end in
# pattern_cannot_handle: close calls were already asked "Did you mean 1) or 2)?" by
# pattern_disambiguate before any flow ran, so what is left goes to a person.
BUILTIN_ACTIONS: dict[str, dict[str, Any] | None] = {
    "action_listen": None, "...": None, "action_session_start": None, "action_back": None,
    "action_unlikely_intent": None, "action_extract_slots": None,
    "action_restart": {"action": "action_cancel_flow"},
    "action_deactivate_loop": {"action": "action_cancel_flow"},
    "action_two_stage_fallback": {"link": "pattern_cannot_handle"},
    "action_default_fallback": {"link": "pattern_cannot_handle"},
    "action_default_ask_affirmation": {"link": "pattern_cannot_handle"},
    "action_default_ask_rephrase": {"link": "pattern_cannot_handle"},
}  # fmt: skip
MAX_OR_VARIANTS = 16  # `or:` steps multiply; more variants than this is a story to rewrite

REPLY_SLOT = "rasa_reply_{n}"  # helper slots: the fan's answer at a story's turn
FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier intent
CANNOT_HANDLE = "pattern_cannot_handle"  # Fanline's flow for it (replaces the default)


@dataclass(slots=True)
class Node:
    """One turn of merged stories: the bot's actions, then the fan's next intents."""

    actions: list[str] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    where: str = ""
    guard: str = ""  # `intent.name == 'x'` and the rule's entity conditions, if any


@dataclass(slots=True)
class Converted:
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: ImportReport = field(default_factory=ImportReport)
    retrieval: set[str] = field(default_factory=set)  # utter_faq: only utter_faq/<key> exist


def convert(stories: list[Story], domain: dict[str, Any]) -> Converted:
    out = Converted()
    forms = dict(domain.get("forms") or {})
    responses = set(domain.get("responses") or {})
    out.retrieval = {r.split("/")[0] for r in responses if "/" in r} - responses
    submits, submit_rules = _form_submits(stories, forms, out.report, domain.get("slots"))
    for name, form in forms.items():
        flow = _form_flow(name, form or {}, domain, responses, out.report)
        if flow is not None:
            flow["steps"] += _submit_steps(submits.get(name, []), forms)
            out.flows[name] = flow
    if out.flows and "requested_slot" not in (domain.get("slots") or {}):
        out.slots["requested_slot"] = {"type": "any"}  # Rasa's: the slot a form asks for
    roots: dict[str, Node] = {}
    asides: dict[str, dict[str, Node]] = {}  # form -> turns taken while it asks
    aside_guards: dict[tuple[str, str], str] = {}  # (form, key) -> a rule's slot conditions
    grafts: list[Story] = []
    for story in stories:
        if id(story) in submit_rules:  # a form's submit rule is in the form's flow already
            continue
        story = _without_form_faqs(story, forms, out)
        story = _retrieval_steps(story, sorted(responses), out)
        during = _during_form(story, forms, domain.get("slots") or {})
        for variant in _variants(story, out.report):
            if during is not None:  # a rule `condition: active_loop: f` starting with an intent
                _add_during_form(variant, *during, asides, aside_guards, forms, out)
                continue
            variant, sides = _aside_turns(variant, forms)
            if variant.steps and variant.steps[0].kind == "action" and not variant.condition:
                grafts.append(variant)  # "after action X, intent -> ...": continues X's turns
            else:
                _add_story(variant, roots, forms, out.report)
            for loop, side in sides:
                _add_story(side, asides.setdefault(loop, {}), forms, out.report, loop=loop)
    for story in grafts:
        _graft(story, roots, forms, out.report)
    fallback = roots.pop(FALLBACK_INTENT, None)
    # turns taken while a form asks come first: their flows start only while it is active
    _aside_flows(asides, aside_guards, roots, forms, out)
    if fallback is not None:
        fallback.actions = [a for a in fallback.actions if a not in BUILTIN_ACTIONS]
        out.flows[CANNOT_HANDLE] = _fallback_flow(fallback, forms)
        out.report.approximated.append(
            f"{fallback.where}: nlu_fallback -> {CANNOT_HANDLE}: says "
            f"{', '.join(fallback.actions)}, then a person takes over (Fanline escalates what it "
            "cannot answer)"
        )
    # a trigger with an entity condition is tried before the same intent without one
    for key in sorted(roots, key=lambda k: "|" not in k):
        out.flows[_flow_id(key)] = _story_flow(key, roots[key], roots, forms, out)
    return out


def _retrieval_steps(story: Story, responses: list[str], out: Converted) -> Story:
    """Notes a story's retrieval actions. Fanline reads `out_of_scope/<key>` as out_of_scope
    (no key to answer with), so `utter_out_of_scope` says its first key's response instead."""
    steps = list(story.steps)
    for index, step in enumerate(steps):
        if step.kind != "action" or step.value not in out.retrieval:
            continue
        where = f"{story.file}:{step.line}: {story.kind} {story.name!r}"
        if step.value == f"utter_{OUT_OF_SCOPE}":
            keys = [r for r in responses if r.startswith(f"{step.value}/")]
            key = f"{step.value}/other" if f"{step.value}/other" in keys else keys[0]
            steps[index] = replace(step, value=key)
            out.report.approximated.append(f"{where}: {step.value} -> {key} (Fanline reads "
                                           "every out_of_scope/<key> as out_of_scope)")  # fmt: skip
            continue
        out.report.converted.append(f"{where}: {step.value} (a retrieval action) says the "
                                    f"response of the fan's intent, {step.value}/<key>")  # fmt: skip
    return replace(story, steps=tuple(steps))


def _without_form_faqs(story: Story, forms: dict, out: Converted) -> Story:
    """A story's FAQ turn while a form asks (`intent: faq`, `action: utter_faq`, `action:
    <form>`) is left out: the form's flow answers a question aside and goes on by itself."""
    steps, loop, index, dropped = list(story.steps), None, 0, []
    while index < len(steps):
        step = steps[index]
        if step.kind == "active_loop":
            loop = step.value if step.value in forms else None
        end = index + 1
        while end < len(steps) and steps[end].kind in ("action", "slot_was_set"):
            end += 1
        actions = [str(s.value) for s in steps[index + 1 : end] if s.kind == "action"]
        faq = step.kind == "intent" and f"utter_{str(step.value).split('/')[0]}" in out.retrieval
        if loop and faq and actions and actions[-1] == loop and set(actions[:-1]) <= out.retrieval:
            dropped.append(step.line)
            del steps[index:end]
            continue
        index += 1
    if not dropped:
        return story
    out.report.approximated.append(
        f"{story.file}:{story.line}: {story.kind} {story.name!r}: the question at line(s) "
        f"{', '.join(map(str, dropped))} is answered aside while the form asks (Fanline's "
        "forms do that themselves), then the form goes on"
    )
    return replace(story, steps=tuple(steps))


def _variants(story: Story, report: ImportReport) -> list[Story]:
    """One story per choice of its `or:` steps (each alternative an intent, maybe with
    entities); the story itself when it has none."""
    variants: list[list[StoryStep]] = [[]]
    for step in story.steps:
        if step.kind != "or":
            variants = [v + [step] for v in variants]
            continue
        choices = []
        for alt in step.value or []:
            if not isinstance(alt, dict) or "intent" not in alt:
                report.left_out.append(f"{story.file}:{step.line}: {story.kind} {story.name!r}: "
                                       f"`or` alternative {alt!r} is not an intent")  # fmt: skip
                continue
            entities = tuple(alt.get("entities") or ())
            choices.append(StoryStep("intent", alt["intent"], step.line, None, entities))
        variants = [v + [c] for v in variants for c in choices]
        if len(variants) > MAX_OR_VARIANTS:
            report.left_out.append(f"{story.file}:{step.line}: {story.kind} {story.name!r}: more "
                                   f"than {MAX_OR_VARIANTS} `or` combinations")  # fmt: skip
            return []
    return [replace(story, steps=tuple(v)) for v in variants]


# ---------------------------------------------------------------- forms


def _form_flow(name: str, form: dict, domain: dict, responses: set[str], report: ImportReport):
    where = f"domain forms.{name}"
    required = form.get("required_slots") or []
    if isinstance(required, dict):  # Rasa 2 style: slot -> mappings
        required = list(required)
    if not required:
        report.left_out.append(f"{where}: a form without required_slots")
        return None
    slots_spec = domain.get("slots") or {}
    validator = f"validate_{name}" if f"validate_{name}" in (domain.get("actions") or []) else None
    asked = []
    actions = set(domain.get("actions") or [])
    for slot in required:
        # Rasa's order: action_ask_<form>_<slot>, action_ask_<slot>, then the responses
        ask = next(
            (a for a in (f"action_ask_{name}_{slot}", f"action_ask_{slot}") if a in actions), None
        ) or next(
            (u for u in (f"utter_ask_{name}_{slot}", f"utter_ask_{slot}") if u in responses), None
        )
        if ask is None:
            report.left_out.append(f"{where}: slot {slot} has no utter_ask_{slot} response "
                                   f"nor action_ask_{slot} action: not asked")  # fmt: skip
            continue
        asked.append((slot, ask))
        _mapping_notes(name, slot, slots_spec.get(slot) or {}, report, validator)
    steps = _trigger_steps(
        name, [slot for slot, _ in asked], slots_spec, asked[0][0] if asked else None
    )
    if validator and asked:
        # Rasa runs the form's validation as it activates it, on the text that started it
        # (rasa.core.actions.forms: `do` -> `_validate_if_required` after action_listen)
        steps.append({"id": "activate", "action": validator})
    for index, (slot, ask) in enumerate(asked):
        after = f"ask_{asked[index + 1][0]}" if index + 1 < len(asked) else "form_done"
        checked = f"check_{slot}" if validator else after
        # Rasa asks only for empty slots and says which one it asks (`requested_slot`)
        steps.append({"id": f"ask_{slot}", "set_slots": [{"requested_slot": slot}]})
        collect: dict[str, Any] = {"id": f"collect_{slot}", "collect": slot, "utter": ask}
        if ask.startswith("action_"):  # a custom action asks (when the slot is empty) ...
            steps += [{"id": f"prompt_{slot}", "noop": True, "next": [
                {"if": f"slots[{slot!r}] != null", "then": f"collect_{slot}"},
                {"else": f"asking_{slot}"}]},
                {"id": f"asking_{slot}", "action": ask}]  # fmt: skip
            collect = {"id": f"collect_{slot}", "collect": slot, "max_asks": 0}  # ... it waits
        by_intent = _from_intent(name, slot, slots_spec.get(slot) or {})
        if by_intent:
            collect["next"] = [
                {"if": f"intent.name == '{intent}'", "then": f"{slot}_from_{_slug(intent)}"}
                for intent in by_intent
            ] + [{"else": checked}]
        steps.append(collect)
        for intent, value in by_intent.items():
            steps.append({"id": f"{slot}_from_{_slug(intent)}", "set_slots": [{slot: value}],
                          "next": checked})  # fmt: skip
        if validator:
            # rasa-sdk's FormValidationAction: validate_<slot> methods, None rejects the value
            steps.append({"id": checked, "action": validator,
                          "next": [{"if": f"slots[{slot!r}] == null", "then": f"ask_{slot}"},
                                   {"else": after}]})  # fmt: skip
    steps.append({"id": "form_done", "set_slots": [{"requested_slot": None}]})
    if validator:
        report.converted.append(f"{where}: {validator} (a FormValidationAction) runs after each "
                                "answer; a slot it sets to null is asked again")  # fmt: skip
    report.converted.append(f"{where}: form -> flow {name} ({len(asked)} collect steps)")
    return {"description": f"Rasa form {name}", "steps": steps}


def _trigger_steps(form: str, slots: list[str], spec: dict, first: str | None) -> list[dict]:
    """`from_trigger_intent`: the form's first steps run in the turn of the text that started
    it, so a branch on that text's intent sets the slot (Rasa: the intent that activated it)."""
    steps: list[dict[str, Any]] = []
    for slot in slots:
        by_intent: dict[str, Any] = {}
        for mapping in (spec.get(slot) or {}).get("mappings") or []:
            if mapping.get("type") == "from_trigger_intent" and _applies(mapping, form, slot):
                intents = mapping.get("intent")
                for intent in intents if isinstance(intents, list) else [intents]:
                    by_intent.setdefault(str(intent), mapping.get("value"))
        if by_intent:
            steps.append({"id": f"trigger_{slot}", "noop": True, "next": [
                {"if": f"intent.name == '{i}'", "then": f"{slot}_by_{_slug(i)}"} for i in by_intent
            ] + [{"else": f"after_trigger_{slot}"}]})  # fmt: skip
            steps += [{"id": f"{slot}_by_{_slug(i)}", "set_slots": [{slot: v}],
                       "next": f"after_trigger_{slot}"} for i, v in by_intent.items()]  # fmt: skip
            steps.append({"id": f"after_trigger_{slot}", "noop": True})
    return steps if first else []


def _from_intent(form: str, slot: str, spec: dict) -> dict[str, Any]:
    """intent -> value of a slot's `from_intent` mappings that apply while `form` asks it."""
    found: dict[str, Any] = {}
    for mapping in spec.get("mappings") or []:
        if mapping.get("type") != "from_intent" or not _applies(mapping, form, slot):
            continue
        intents = mapping.get("intent")
        for intent in intents if isinstance(intents, list) else [intents]:
            if intent:
                found.setdefault(str(intent), mapping.get("value"))
    return found


def _applies(mapping: dict, form: str, slot: str) -> bool:
    """Whether a mapping's `conditions` allow it while `form` asks for `slot`."""
    conditions = mapping.get("conditions") or []
    return not conditions or any(
        c.get("active_loop") in (form, None) and c.get("requested_slot") in (slot, None)
        for c in conditions
        if isinstance(c, dict)
    )


def _mapping_notes(
    form: str, slot: str, spec: dict, report: ImportReport, validator: str | None
) -> None:
    for mapping in spec.get("mappings") or []:
        kind = mapping.get("type")
        what = f"domain slots.{slot} ({form})"
        if kind in ("from_entity", "from_intent", "from_trigger_intent"):
            continue  # the collect step reads its entities; intents branch to the value
        if kind == "from_text" and (mapping.get("not_intent") or mapping.get("intent")):
            report.approximated.append(f"{what}: from_text with intent / not_intent: any answer "
                                       "fills it; a question or sure request interrupts instead")  # fmt: skip
        elif kind == "custom" and not validator:
            report.left_out.append(f"{what}: mapping custom (nothing fills it: no validate_{form})")
        elif kind not in ("from_text", "custom"):
            report.left_out.append(f"{what}: mapping {kind} (the collect step reads the text)")


def _form_submits(stories: list[Story], forms: dict, report: ImportReport, slots: Any = None):
    """Actions of rules `condition: active_loop: form` whose steps start with the form itself:
    what runs once the form is complete. Also the ids of those rules."""
    submits: dict[str, list[tuple[str, list[str]]]] = {}
    rules: set[int] = set()
    for story in stories:
        loops = [c.get("active_loop") for c in story.condition if _is_active_loop(c)]
        if story.kind != "rule" or not loops or loops[0] not in forms or not story.steps:
            continue
        if (story.steps[0].kind, story.steps[0].value) != ("action", loops[0]):
            continue
        rules.add(id(story))
        actions = [s.value for s in story.steps if s.kind == "action" and s.value != loops[0]]
        guard = _slot_guard(story.condition, slots or {})
        submits.setdefault(loops[0], []).append(
            (guard, [a for a in actions if a not in BUILTIN_ACTIONS])
        )
        when = f" (if {guard})" if guard else ""
        report.converted.append(f"{story.file}:{story.line}: rule {story.name!r} -> end of flow "
                                f"{loops[0]}{when}")  # fmt: skip
    return submits, rules


def _slot_guard(condition: tuple[Any, ...], slots: dict) -> str:
    """A rule's `slot_was_set` conditions as a flow condition: `- x: null` is empty; a value
    of a text or any slot is "set" (Rasa features such a slot only as set or not), other
    types compare the value."""
    parts = []
    for item in condition:
        if not isinstance(item, dict) or "slot_was_set" not in item:
            continue
        for entry in item["slot_was_set"] or []:
            pairs = entry.items() if isinstance(entry, dict) else [(entry, True)]
            for name, value in pairs:
                kind = (slots.get(name) or {}).get("type")
                if value is None:
                    parts.append(f"slots[{name!r}] == null")
                elif kind in ("text", "any", None) or value is True and kind != "bool":
                    parts.append(f"slots[{name!r}] != null")
                else:
                    parts.append(f"slots[{name!r}] == {value!r}")
    return " and ".join(parts)


def _submit_steps(blocks: list[tuple[str, list[str]]], forms: dict) -> list[dict[str, Any]]:
    """What runs once the form is complete: each submit rule's actions, behind its slot
    conditions (a rule whose condition does not hold adds nothing: the story goes on)."""
    steps: list[dict[str, Any]] = []
    for index, (guard, actions) in enumerate(blocks):
        run = [s for a in actions if (s := _action_step(a, forms))]
        if not run:
            continue
        after = f"submit_{index + 1}" if index + 1 < len(blocks) else "END"
        if guard:
            steps.append({"id": f"submit_{index}", "noop": True,
                          "next": [{"if": guard, "then": f"submit_{index}_run"}, {"else": after}]})  # fmt: skip
            run[0] = {"id": f"submit_{index}_run", **run[0]}
        else:
            run[0] = {"id": f"submit_{index}", **run[0]}
        run[-1] = {**run[-1], "next": after} if "link" not in run[-1] else run[-1]
        steps += run
    return steps


def _fallback_flow(node: Node, forms: dict) -> dict[str, Any]:
    steps = [s for a in node.actions if (s := _action_step(a, forms))]
    steps.append({"escalate": {"reason": "out_of_scope", "priority": "normal"}})
    return {
        "description": "Rasa's nlu_fallback rule: nothing matched the fan's text",
        "steps": steps,
    }


def _is_active_loop(condition: Any) -> bool:
    return isinstance(condition, dict) and "active_loop" in condition


# ---------------------------------------------------------------- rules and stories


def _aside_turns(story: Story, forms: dict) -> tuple[Story, list[tuple[str, Story]]]:
    """A story's turns taken while a form asks (`active_loop: f`, then an intent before the
    form is done), as Rasa's policies predict them: each such turn, with what the story does
    until it returns to the form, is a story of its own that applies while that form is
    active (`[(form, story)]`); the story itself keeps the turns before.

    A part that ends by running the interrupted form again (`- action: f`) stops there: the
    form, still under it, asks again. A part that runs another form deactivates the
    interrupted one first (Rasa has one active loop) and calls it again when it returns."""
    head: list[StoryStep] = []
    parts: list[tuple[str, list[StoryStep]]] = []
    current, loop, aside, seen = head, None, False, False
    for step in story.steps:
        if step.kind == "intent" and loop and not aside and seen:
            parts.append((loop, [step]))
            current, aside = parts[-1][1], True
            continue
        current.append(step)
        seen = seen or step.kind == "intent"
        if step.kind == "action" and step.value in forms:
            loop, aside = str(step.value), False
        elif step.kind == "active_loop":
            loop = str(step.value) if step.value in forms else None
    if not parts:
        return story, []
    sides = [
        (form, replace(story, steps=_trim_aside(form, steps, forms), condition=()))
        for form, steps in parts
    ]
    return replace(story, steps=tuple(head)), sides


def _trim_aside(form: str, steps: list[StoryStep], forms: dict) -> tuple[StoryStep, ...]:
    """A turn taken while `form` asks, up to where the story returns to it (the form, still
    under the turn's flow, asks again); another form run first deactivates `form`."""
    ran = [i for i, s in enumerate(steps) if s.kind == "action" and s.value in forms]
    others = [i for i in ran if steps[i].value != form]
    if ran and not others and steps[ran[-1]].value == form:
        steps = steps[: ran[-1]]  # back to the form: it is still there, under this part
    elif others:
        stop = StoryStep("action", "action_deactivate_loop", steps[others[0]].line)
        steps = steps[: others[0]] + [stop] + steps[others[0] :]
    return tuple(steps)


def _aside_flows(
    asides: dict[str, dict[str, Node]], guards: dict, roots: dict, forms: dict, out: Converted
) -> None:
    for loop, loop_roots in asides.items():
        for key in sorted(loop_roots, key=lambda k: "|" not in k):
            flow = _story_flow(key, loop_roots[key], roots, forms, out)
            guard = guards.get((loop, key))
            flow["if"] = " and ".join(
                [f"active_loop.name == '{loop}'"]
                + ([guard] if guard else [])
                + ([flow["if"]] if "if" in flow else [])
            )
            flow["description"] = f"Rasa stories: {key} while form {loop} asks"
            out.flows[_flow_id(f"{loop}_{key}")] = flow


def _add_during_form(
    rule: Story, form: str, guard: str, asides: dict, guards: dict, forms: dict, out: Converted
) -> None:
    first = rule.steps[0]
    key = _entity_guard(str(first.value), first.entities)[1]
    if guards.setdefault((form, key), guard) != guard:
        out.report.left_out.append(f"{rule.file}:{rule.line}: rule {rule.name!r}: another rule "
                                   f"for {key} while {form} asks has other slot conditions: the "
                                   "first wins")  # fmt: skip
        return
    side = replace(rule, steps=_trim_aside(form, list(rule.steps), forms), condition=())
    _add_story(side, asides.setdefault(form, {}), forms, out.report, loop=form)


def _during_form(story: Story, forms: dict, slots: dict) -> tuple[str, str] | None:
    """(form, slot guard) of a rule that applies while a form asks (`condition: - active_loop:
    f`, maybe with `slot_was_set` conditions) and starts with the fan's intent: Rasa's way to
    answer a question mid-form (`- action: f` at its end: the form asks again)."""
    if story.kind != "rule" or not story.steps or story.steps[0].kind not in ("intent", "or"):
        return None
    loops = [c.get("active_loop") for c in story.condition if _is_active_loop(c)]
    others = [c for c in story.condition if not _is_active_loop(c)]
    if len(loops) != 1 or loops[0] not in forms:
        return None
    if any(not (isinstance(c, dict) and set(c) == {"slot_was_set"}) for c in others):
        return None
    return str(loops[0]), _slot_guard(story.condition, slots)


def _add_story(
    story: Story, roots: dict[str, Node], forms: dict, report: ImportReport, loop: str = ""
) -> None:
    where = f"{story.file}:{story.line}"
    label = f"{story.kind} {story.name!r}"
    turns, problem = _turns(story.steps, forms)
    conditions = [c for c in story.condition if c != {"active_loop": None}]
    if problem or conditions:
        why = problem or "a condition on slots or a form (only form submit rules convert)"
        report.left_out.append(f"{where}: {label}: {why}")
        return
    if not turns:
        report.left_out.append(f"{where}: {label}: no user turn")
        return
    node_map, parent = roots, None
    for key, guard, actions, line in turns:
        node = node_map.get(key)
        if node is None:
            node = node_map[key] = Node(actions, {}, f"{story.file}:{line}", guard)
        elif node.actions != actions:
            report.left_out.append(f"{story.file}:{line}: {label}: after {key} it does "
                                   f"{actions}, another one {node.actions} ({node.where}): the first wins")  # fmt: skip
            return
        parent, node_map = node, node.children
    assert parent is not None
    kind = "flow" if len(turns) == 1 else f"flow with {len(turns)} turns"
    if story.condition:
        report.approximated.append(f"{where}: {label}: condition `active_loop: null` dropped (its "
                                   "intent also interrupts a flow waiting for an answer)")  # fmt: skip
    if loop:
        report.converted.append(f"{story.file}:{turns[0][3]}: {label}: {turns[0][0]} while form "
                                f"{loop} asks -> {kind} {_flow_id(f'{loop}_{turns[0][0]}')} "
                                f"(if active_loop.name == '{loop}')")  # fmt: skip
        return
    report.converted.append(f"{where}: {label} -> {kind} {_flow_id(turns[0][0])}")


def _graft(story: Story, roots: dict[str, Node], forms: dict, report: ImportReport) -> None:
    """A rule or story starting with actions (`- action: action_handoff_options` then an
    intent) continues every turn that ends with those actions."""
    where, label = f"{story.file}:{story.line}", f"{story.kind} {story.name!r}"
    lead = []
    for step in story.steps:
        if step.kind != "action":
            break
        if BUILTIN_ACTIONS.get(str(step.value), {}) is not None:
            lead.append(str(step.value))
    turns, problem = _turns(story.steps[_lead_length(story) :], forms)
    if problem or not turns:
        report.left_out.append(f"{where}: {label}: {problem or 'no user turn'}")
        return
    ends = [n for n in _nodes(roots) if lead and n.actions[-len(lead) :] == lead]
    if not ends:
        report.left_out.append(f"{where}: {label}: starts with {lead}, which no rule or story "
                               "ends a turn with")  # fmt: skip
        return
    for node in ends:
        node_map = node.children
        for key, guard, actions, line in turns:
            child = node_map.get(key)
            if child is None:
                child = node_map[key] = Node(list(actions), {}, f"{story.file}:{line}", guard)
            node_map = child.children
    report.converted.append(f"{where}: {label} -> continues {len(ends)} turn(s) ending with "
                            f"{lead[-1]}")  # fmt: skip


def _lead_length(story: Story) -> int:
    count = 0
    for step in story.steps:
        if step.kind != "action":
            break
        count += 1
    return count


def _nodes(roots: dict[str, Node]):
    for node in roots.values():
        yield node
        yield from _nodes(node.children)


def _turns(steps: tuple[StoryStep, ...], forms: dict):
    """[(key, guard, actions, line)] of a story or rule, key the intent (with its entity
    condition, if any); or a reason it cannot become a flow."""
    turns: list[tuple[str, str, list[str], int | None]] = []
    for step in steps:
        if step.kind == "intent":
            if not step.value:
                return [], f"line {step.line}: a user text without an intent"
            guard, key = _entity_guard(str(step.value), step.entities)
            turns.append((key, guard, [], step.line))
        elif step.kind == "checkpoint":
            return [], f"line {step.line}: checkpoints (write the joined story as one flow)"
        elif step.kind == "action":
            if not turns:
                return [], f"line {step.line}: starts with an action, not a user intent"
            if BUILTIN_ACTIONS.get(str(step.value), {}) is not None:
                turns[-1][2].append(str(step.value))
        elif step.kind == "bot":
            return [], f"line {step.line}: an end-to-end bot text (use a response, utter_*)"
        # slot_was_set and active_loop record what forms and entities did: nothing to run
    return turns, None


def _entity_guard(intent: str, entities: tuple[Any, ...]) -> tuple[str, str]:
    """(condition on the text's intent and entities, the node's key): a rule's
    `entities: [{handoff_to: financial_demo}]` or `[handoff_to]` must hold too."""
    parts, keys = [f"intent.name == '{intent}'"], []
    for item in entities:
        pairs = item.items() if isinstance(item, dict) else [(item, None)]
        for name, value in pairs:
            if name in ("entity", "value") and isinstance(item, dict) and "entity" in item:
                name, value = item["entity"], item.get("value")  # {entity: x, value: y}
            field = f"message.entities[{str(name)!r}]"
            if value is None:
                parts.append(f"{field} != null")
                keys.append(str(name))
            else:
                parts.append(f"{field} == {str(value)!r}")
                keys.append(f"{name}={value}")
            if isinstance(item, dict) and "entity" in item:
                break
    key = intent if not keys else f"{intent}|{','.join(sorted(set(keys)))}"
    return " and ".join(dict.fromkeys(parts)), key


def _story_flow(key: str, node: Node, roots: dict[str, Node], forms: dict, out: Converted):
    steps: list[dict[str, Any]] = []
    _emit(node, steps, roots, forms, out, [0])
    intent = key.split("|")[0]
    flow = {"description": f"Rasa rules and stories starting with {key}",
            "nlu_trigger": [{"intent": {"name": intent}}], "steps": steps}  # fmt: skip
    if "|" in key:
        flow["if"] = node.guard.split(" and ", 1)[1]
    if any("collect" in s for s in steps):
        flow["persisted_slots"] = []  # the helper reply slots are cleared at the end
    return flow


def _emit(
    node: Node, steps: list, roots: dict, forms: dict, out: Converted, counter: list[int]
) -> None:
    actions = list(node.actions)
    if not node.children:
        leaf = [s for a in actions if (s := _action_step(a, forms))] or [{"noop": True}]
        if "link" not in leaf[-1]:
            leaf[-1]["next"] = "END"
        steps += leaf
        return
    # a retrieval action (utter_faq) says the fan's own key, not one question to ask again
    asks = actions and actions[-1].startswith("utter_") and actions[-1] not in out.retrieval
    question = actions.pop() if asks else None
    steps += [s for a in actions if (s := _action_step(a, forms))]
    counter[0] += 1
    slot = REPLY_SLOT.format(n=counter[0])
    out.slots[slot] = {"type": "any"}
    # a turn ending with a custom action: it asked (its text, its buttons); the step only waits
    ask = {"utter": question} if question else {"max_asks": 0}
    children = sorted(node.children, key=lambda k: "|" not in k)  # entity conditions first
    branches = [{"if": node.children[k].guard, "then": f"{slot}_{_slug(k)}"} for k in children]
    # an FAQ the turn does not expect is answered aside and the question stays (the engine's)
    others = sorted(
        (k for k in roots if k not in node.children and f"utter_{k}" not in out.retrieval),
        key=lambda k: "|" not in k,
    )
    branches += [{"if": roots[k].guard, "then": f"{slot}_to_{_slug(k)}"} for k in others]
    steps.append({"id": slot, "collect": slot, **ask, "ask_before_filling": True,
                  "next": branches + [{"else": f"{slot}_unknown"}]})  # fmt: skip
    for key in children:
        steps.append({"id": f"{slot}_{_slug(key)}", "noop": True})
        _emit(node.children[key], steps, roots, forms, out, counter)
    for key in others:
        steps.append({"id": f"{slot}_to_{_slug(key)}", "link": _flow_id(key)})
    steps.append({"id": f"{slot}_unknown", "link": "pattern_cannot_handle"})


def _action_step(action: str, forms: dict) -> dict[str, Any] | None:
    if action in BUILTIN_ACTIONS:
        step = BUILTIN_ACTIONS[action]
        return dict(step) if step is not None else None
    return {"call": action} if action in forms else {"action": action}


def _flow_id(intent: str) -> str:
    return f"rasa_{_slug(intent)}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
