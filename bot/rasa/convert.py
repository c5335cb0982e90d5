"""Rasa forms, rules and stories -> Fanline flows (plain dicts, written by the importer).

Pure: takes parsed stories (`bot.rasa.stories`) and the Rasa domain as a dict, returns flows,
the helper slots they need, and an `ImportReport` entry for every part, with file and line.
A form becomes a flow of `collect` steps; a rule `intent -> actions` a flow triggered by the
intent; stories sharing their first intent merge into one flow whose later turns are
`collect` steps answered by the fan, branching on the intent of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.rasa.report import ImportReport
from bot.rasa.stories import SILENT_ACTIONS, Story, StoryStep

REPLY_SLOT = "rasa_reply_{n}"  # helper slots: the fan's answer at a story's turn
FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier intent
CANNOT_HANDLE = "pattern_cannot_handle"  # Fanline's flow for it (replaces the default)


@dataclass(slots=True)
class Node:
    """One turn of merged stories: the bot's actions, then the fan's next intents."""

    actions: list[str] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    where: str = ""


@dataclass(slots=True)
class Converted:
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: ImportReport = field(default_factory=ImportReport)


def convert(stories: list[Story], domain: dict[str, Any]) -> Converted:
    out = Converted()
    forms = dict(domain.get("forms") or {})
    responses = set(domain.get("responses") or {})
    submits, submit_rules = _form_submits(stories, forms, out.report)
    for name, form in forms.items():
        flow = _form_flow(name, form or {}, domain, responses, out.report)
        if flow is not None:
            flow["steps"] += [_action_step(a, forms) for a in submits.get(name, [])]
            out.flows[name] = flow
    roots: dict[str, Node] = {}
    for story in stories:
        if id(story) not in submit_rules:  # a form's submit rule is in the form's flow already
            _add_story(story, roots, forms, out.report)
    fallback = roots.pop(FALLBACK_INTENT, None)
    if fallback is not None:
        out.flows[CANNOT_HANDLE] = _fallback_flow(fallback, forms)
        out.report.approximated.append(
            f"{fallback.where}: nlu_fallback -> {CANNOT_HANDLE}: says "
            f"{', '.join(fallback.actions)}, then a person takes over (Fanline escalates what it "
            "cannot answer)"
        )
    for intent, node in roots.items():
        out.flows[_flow_id(intent)] = _story_flow(intent, node, roots, forms, out)
    return out


# ---------------------------------------------------------------- forms


def _form_flow(name: str, form: dict, domain: dict, responses: set[str], report: ImportReport):
    where = f"domain forms.{name}"
    required = form.get("required_slots") or []
    if isinstance(required, dict):  # Rasa 2 style: slot -> mappings
        required = list(required)
    if not required:
        report.left_out.append(f"{where}: a form without required_slots")
        return None
    steps = []
    for slot in required:
        ask = next(
            (u for u in (f"utter_ask_{name}_{slot}", f"utter_ask_{slot}") if u in responses), None
        )
        if ask is None:
            report.left_out.append(f"{where}: slot {slot} has no utter_ask_{slot} response (an "
                                   "action_ask_* custom action cannot ask a collect step)")  # fmt: skip
            return None
        steps.append(
            {"id": f"ask_{slot}", "collect": slot, "utter": ask, "ask_before_filling": True}
        )
        _mapping_notes(name, slot, (domain.get("slots") or {}).get(slot) or {}, report)
    if f"validate_{name}" in (domain.get("actions") or []):
        report.left_out.append(
            f"{where}: validate_{name} (a FormValidationAction) is not run by the collect steps; "
            "write its checks as `rejections:` on each collect step, or call it as an action"
        )
    report.converted.append(f"{where}: form -> flow {name} ({len(steps)} collect steps)")
    return {"description": f"Rasa form {name}", "steps": steps}


def _mapping_notes(form: str, slot: str, spec: dict, report: ImportReport) -> None:
    for mapping in spec.get("mappings") or []:
        kind = mapping.get("type")
        what = f"domain slots.{slot} ({form})"
        if kind == "from_text" or (kind == "from_entity" and mapping.get("entity") == slot):
            continue  # exactly what a collect step does
        if kind == "from_entity":
            report.approximated.append(f"{what}: from_entity {mapping.get('entity')}: a collect "
                                       f"step fills {slot} from an entity named {slot}, else the text")  # fmt: skip
        elif kind == "from_intent" and spec.get("type") == "bool":
            report.approximated.append(f"{what}: from_intent: the bool slot reads yes/no answers")
        else:
            report.left_out.append(f"{what}: mapping {kind} (the collect step reads the text)")


def _form_submits(stories: list[Story], forms: dict, report: ImportReport):
    """Actions of rules `condition: active_loop: form` whose steps start with the form itself:
    what runs once the form is complete. Also the ids of those rules."""
    submits: dict[str, list[str]] = {}
    rules: set[int] = set()
    for story in stories:
        loops = [c.get("active_loop") for c in story.condition if _is_active_loop(c)]
        if story.kind != "rule" or not loops or loops[0] not in forms or not story.steps:
            continue
        if (story.steps[0].kind, story.steps[0].value) != ("action", loops[0]):
            continue
        rules.add(id(story))
        actions = [s.value for s in story.steps if s.kind == "action" and s.value != loops[0]]
        submits.setdefault(loops[0], []).extend(a for a in actions if a not in SILENT_ACTIONS)
        report.converted.append(f"{story.file}:{story.line}: rule {story.name!r} -> end of flow "
                                f"{loops[0]}")  # fmt: skip
    return submits, rules


def _fallback_flow(node: Node, forms: dict) -> dict[str, Any]:
    steps = [_action_step(a, forms) for a in node.actions]
    steps.append({"escalate": {"reason": "out_of_scope", "priority": "normal"}})
    return {
        "description": "Rasa's nlu_fallback rule: nothing matched the fan's text",
        "steps": steps,
    }


def _is_active_loop(condition: Any) -> bool:
    return isinstance(condition, dict) and "active_loop" in condition


# ---------------------------------------------------------------- rules and stories


def _add_story(story: Story, roots: dict[str, Node], forms: dict, report: ImportReport) -> None:
    where = f"{story.file}:{story.line}"
    label = f"{story.kind} {story.name!r}"
    turns, problem = _turns(story.steps, forms)
    if problem or story.condition:
        why = problem or "a condition on slots or a form (only form submit rules convert)"
        report.left_out.append(f"{where}: {label}: {why}")
        return
    if not turns:
        report.left_out.append(f"{where}: {label}: no user turn")
        return
    node_map, parent = roots, None
    for intent, actions, line in turns:
        node = node_map.get(intent)
        if node is None:
            node = node_map[intent] = Node(actions, {}, f"{story.file}:{line}")
        elif node.actions != actions:
            report.left_out.append(f"{story.file}:{line}: {label}: after {intent} it does "
                                   f"{actions}, another one {node.actions} ({node.where}): the first wins")  # fmt: skip
            return
        parent, node_map = node, node.children
    assert parent is not None
    kind = "flow" if len(turns) == 1 else f"flow with {len(turns)} turns"
    report.converted.append(f"{where}: {label} -> {kind} {_flow_id(turns[0][0])}")


def _turns(steps: tuple[StoryStep, ...], forms: dict):
    """[(intent, actions, line)] of a story or rule; or a reason it cannot become a flow."""
    turns: list[tuple[str, list[str], int | None]] = []
    for step in steps:
        if step.kind == "intent":
            if not step.value:
                return [], f"line {step.line}: a user text without an intent"
            turns.append((str(step.value), [], step.line))
        elif step.kind == "or":
            return (
                [],
                f"line {step.line}: `or` (write one rule per intent, or one flow with several nlu_trigger intents)",
            )
        elif step.kind == "checkpoint":
            return [], f"line {step.line}: checkpoints (write the joined story as one flow)"
        elif step.kind == "action":
            if not turns:
                return [], f"line {step.line}: starts with an action, not a user intent"
            if step.value not in SILENT_ACTIONS:
                turns[-1][1].append(str(step.value))
        elif step.kind == "bot":
            return [], f"line {step.line}: an end-to-end bot text (use a response, utter_*)"
        # slot_was_set and active_loop record what forms and entities did: nothing to run
    return turns, None


def _story_flow(intent: str, node: Node, roots: dict[str, Node], forms: dict, out: Converted):
    steps: list[dict[str, Any]] = []
    _emit(node, steps, roots, forms, out, [0])
    flow = {"description": f"Rasa rules and stories starting with {intent}",
            "nlu_trigger": [{"intent": {"name": intent}}], "steps": steps}  # fmt: skip
    if any("collect" in s for s in steps):
        flow["persisted_slots"] = []  # the helper reply slots are cleared at the end
    return flow


def _emit(
    node: Node, steps: list, roots: dict, forms: dict, out: Converted, counter: list[int]
) -> None:
    actions = list(node.actions)
    if not node.children:
        leaf = [_action_step(a, forms) for a in actions] or [{"noop": True}]
        leaf[-1]["next"] = "END"
        steps += leaf
        return
    question = actions.pop() if actions and actions[-1].startswith("utter_") else None
    steps += [_action_step(a, forms) for a in actions]
    if question is None:
        out.report.left_out.append(f"{node.where}: the turn before {sorted(node.children)} ends "
                                   "with a custom action, not a question (utter_*): later turns dropped")  # fmt: skip
        steps.append({"noop": True, "next": "END"})
        return
    counter[0] += 1
    slot = REPLY_SLOT.format(n=counter[0])
    out.slots[slot] = {"type": "any"}
    branches = [
        {"if": f"intent.name == '{i}'", "then": f"{slot}_{_slug(i)}"} for i in node.children
    ]
    others = [i for i in roots if i not in node.children]
    branches += [{"if": f"intent.name == '{i}'", "then": f"{slot}_to_{_slug(i)}"} for i in others]
    steps.append({"id": slot, "collect": slot, "utter": question, "ask_before_filling": True,
                  "next": branches + [{"else": f"{slot}_unknown"}]})  # fmt: skip
    for intent, child in node.children.items():
        steps.append({"id": f"{slot}_{_slug(intent)}", "noop": True})
        _emit(child, steps, roots, forms, out, counter)
    for intent in others:
        steps.append({"id": f"{slot}_to_{_slug(intent)}", "link": _flow_id(intent)})
    steps.append({"id": f"{slot}_unknown", "link": "pattern_cannot_handle"})


def _action_step(action: str, forms: dict) -> dict[str, Any]:
    return {"call": action} if action in forms else {"action": action}


def _flow_id(intent: str) -> str:
    return f"rasa_{_slug(intent)}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
