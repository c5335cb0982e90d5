"""Cross-checks of loaded content (`fanline validate`, and start-up before serving messages).

The loader already refused what cannot be read; this module finds what reads fine but cannot
work: names that point nowhere (responses, slots, intents, flows, actions, step ids, `{names}`
in responses), braces no renderer reads, acknowledgements naming another priority than the
escalation's, steps no path reaches, loops that would never wait for the fan (within a flow or
across flows through `link` and `call`), and texts too long for a few SMS.
Every problem is a ConfigError with file, line and key; `warning=True` ones do not block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from bot.errors import ConfigError, Location
from bot.flows.conditions import referenced_slots
from bot.flows.model import (
    END,
    CollectStep,
    Domain,
    EscalateStep,
    Flow,
    Located,
    NextIf,
    StepBase,
)
from bot.flows.responses import is_retrieval_action, placeholders, stray_braces
from bot.flows.slot_types import normalise
from bot.sms import sms_segments

BUILTIN_ACTIONS = {
    "action_subscribe", "action_unsubscribe", "action_listen", "action_cancel_flow", "action_react",
}  # fmt: skip
# what `{name}` may read besides slots: the fan's fields (`Contact.fan_fields`, the signup
# form's profile) and the personal links the pipeline adds (`signup_link`)
FAN_FIELDS = {"first_name", "birthday", "email", "zip", "country", "timezone", "tags",
              "subscription", "subscribed", "is_new", "signup_link"}  # fmt: skip
# what the pipeline adds to escalation acknowledgements: when the team is next at work
ACK_FIELDS = {"team_back"}
ACK_RESPONSES = {"utter_after_hours", "utter_escalation_ack", "utter_escalation_joined"}
# words that tell the fan how urgent their case is: they must be what the team's queue shows
PRIORITY_WORDS = {
    "urgent": re.compile(r"\burgent(e|ly)?\b", re.IGNORECASE),
    "high": re.compile(r"\bhigh[- ]priority\b|\b(alta prioridad|prioridad alta)\b", re.IGNORECASE),
    "normal": re.compile(r"\b(normal|regular)[- ]priority\b", re.IGNORECASE),
    "low": re.compile(r"\blow[- ]priority\b|\b(baja prioridad|prioridad baja)\b", re.IGNORECASE),
}


def validate_content(
    flows: Mapping[str, Flow],
    domain: Domain,
    *,
    intents: set[str] | None = None,
    actions: set[str] | None = None,
    max_segments: int = 3,
) -> list[ConfigError]:
    checker = _Checker(flows, domain, intents, actions)
    for flow in flows.values():
        checker.flow(flow)
        checker.graph(flow)
    checker.loops()
    checker.placeholders()
    checker.priorities()
    checker.keywords()
    checker.long_responses(max_segments)
    return checker.problems


def _declared_intents(domain: Domain) -> set[str]:
    """`intents:` of domain.yml: names, or one-key mappings (`- greet: {use_entities: []}`)."""
    names: set[str] = set()
    for item in domain.intents or []:
        names.update(item if isinstance(item, dict) else [str(item)])
    return names


class _Checker:
    def __init__(
        self,
        flows: Mapping[str, Flow],
        domain: Domain,
        intents: set[str] | None,
        actions: set[str] | None,
    ) -> None:
        self.flows = flows
        self.domain = domain
        self.intents = intents
        self.actions = actions
        self.problems: list[ConfigError] = []
        self.uttered: set[str] = set()  # responses flows render (not only custom actions)

    def report(self, message: str, where: Location, *, warning: bool = False) -> None:
        self.problems.append(ConfigError(message, where, warning=warning))

    # ------------------------------------------------------------ names

    def flow(self, flow: Flow) -> None:
        path = f"flows.{flow.id}"
        for index, trigger in enumerate(flow.nlu_trigger):
            name = trigger.intent.name
            # Patterns' intents (cancel, human_handoff) are optional for a project's NLU; an
            # intent the domain declares without examples is sent by buttons (`/name` payloads).
            if self.intents is None or name in self.intents or flow.is_pattern:
                continue
            if name in _declared_intents(self.domain):
                continue
            where = trigger.intent.where()
            if where.line is None:  # a bare `- greet` item: point at the list
                where = flow.where("nlu_trigger")
            key = f"{path}.nlu_trigger[{index}]"
            self.report(f"unknown intent {name!r}", Location(where.file, where.line, key))
        for slot in flow.persisted_slots or ():
            self.slot(slot, flow.where("persisted_slots", path=path))
        if flow.if_:
            self.condition(flow.if_, flow.where("if", path=path))
        if flow.trigger is not None and flow.trigger.flow not in (None, *self.flows):
            where = flow.trigger.where("flow", path=f"{path}.trigger")
            self.report(f"no_reply_after names unknown flow {flow.trigger.flow!r}", where)
        for index, step in enumerate(flow.steps):
            self.step(flow, step, f"{path}.steps[{index}]")

    def step(self, flow: Flow, step: StepBase, path: str) -> None:
        if isinstance(step, CollectStep):
            self.slot(step.collect, step.where("collect", path=path))
            if step.max_asks != 0:  # 0: never asked by the step itself
                self.response(
                    step.question, step.where("utter" if step.utter else "collect", path=path)
                )
            for rejection in step.rejections:
                self.response(rejection.utter, rejection.where("utter", path=f"{path}.rejections"))
                self.condition(rejection.if_, rejection.where("if", path=f"{path}.rejections"))
        elif step.kind == "action":
            self.action(step.action, step.where("action", path=path))  # type: ignore[attr-defined]
        elif step.kind == "set_slots":
            for name, _ in step.assignments:  # type: ignore[attr-defined]
                self.slot(name, step.where("set_slots", path=path))
        elif step.kind in ("link", "call"):
            target = getattr(step, step.kind)
            if target not in self.flows:
                self.report(f"unknown flow {target!r}", step.where(step.kind, path=path))
        self.next_targets(flow, step, path)

    def next_targets(self, flow: Flow, step: StepBase, path: str) -> None:
        ids = {s.step_id for s in flow.steps} | {END}
        for target, where in _next_targets(step, path):
            if target not in ids:
                self.report(f"`next` points to unknown step {target!r} in flow {flow.id!r}", where)
        for branch in step.next if isinstance(step.next, list) else ():
            if isinstance(branch, NextIf):
                self.condition(branch.if_, branch.where("if", path=f"{path}.next"))

    def slot(self, name: str, where: Location) -> None:
        if name not in self.domain.slots:
            self.report(f"unknown slot {name!r} (declare it under `slots:` in the domain)", where)

    def response(self, name: str, where: Location) -> None:
        self.uttered.add(name)
        if name not in self.domain.responses:
            self.report(f"unknown response {name!r} (define it under `responses:`)", where)

    def action(self, name: str, where: Location) -> None:
        if is_retrieval_action(name, self.domain.responses):
            self.uttered.update(r for r in self.domain.responses if r.startswith(f"{name}/"))
        elif name.startswith("utter_"):
            self.response(name, where)
        elif name not in BUILTIN_ACTIONS and self.actions is not None and name not in self.actions:
            self.report(f"unknown custom action {name!r}", where)

    def condition(self, expr: str, where: Location) -> None:
        for name in sorted(referenced_slots(expr) - self.domain.slots.keys()):
            self.report(f"condition reads unknown slot {name!r}", where)

    # ------------------------------------------------------------ structure

    def graph(self, flow: Flow) -> None:
        edges = _edges(flow)
        reached = _reachable(flow.steps[0].step_id, edges)
        for index, step in enumerate(flow.steps):
            if step.step_id not in reached:
                where = step.where(path=f"flows.{flow.id}.steps[{index}]")
                self.report(f"step {step.step_id!r} can never be reached", where, warning=True)

    def loops(self) -> None:
        """Steps that run without waiting for the fan must not form a cycle: one text would
        make the bot talk forever. `link` and `call` join the flows into one graph."""
        edges = _flow_graph(self.flows)
        silent = {
            (flow.id, s.step_id)
            for flow in self.flows.values()
            for s in flow.steps
            if not isinstance(s, CollectStep)
        }
        for cycle in _cycles(edges, silent):
            flow = self.flows[cycle[0][0]]
            first = flow.step(cycle[0][1])
            where = first.where(path=f"flows.{flow.id}.steps[{flow.index(first.step_id)}]")
            names = [step if fid == flow.id else f"{fid}.{step}" for fid, step in cycle]
            loop = " -> ".join([*names, names[0]])
            self.report(f"loop that never waits for the fan: {loop}", where)

    def placeholders(self) -> None:
        """`{name}` must be a slot or a fan field. A response only custom actions utter may be
        filled by the action's own values, so there it is a warning. Braces the renderer does
        not read (`{first name}`, `{x:>3}`) would reach fans as written: an error anywhere."""
        known = set(self.domain.slots) | FAN_FIELDS
        for name, variants in self.domain.responses.items():
            ack = name in ACK_RESPONSES or name.endswith("_after_hours")
            allowed = known | ACK_FIELDS if ack else known
            for index, variant in enumerate(variants):
                for stray in stray_braces(variant.text or "")[:1]:
                    self.report(
                        f"response {name!r} has {stray!r}, which no renderer understands: write "
                        "{slot}, {slot|default} or {{ and }} for literal braces",
                        _where(variant, "text", f"responses.{name}[{index}]"),
                    )
                for token in sorted(placeholders(variant.text or "") - allowed):
                    message = f"response {name!r} uses unknown placeholder {{{token}}}"
                    where = _where(variant, "text", f"responses.{name}[{index}]")
                    if name in self.uttered:
                        self.report(f"{message} (not a slot or a fan field)", where)
                    else:
                        message += " (only a custom action that passes it can fill it)"
                        self.report(message, where, warning=True)

    def priorities(self) -> None:
        """An acknowledgement that names a priority ("I've flagged it as urgent") must name the
        one the flow escalates with (the queue shows it, and its due time follows it); the
        shared acknowledgements follow every escalation, so they name none."""
        told: dict[str, set[str]] = {name: set() for name in ACK_RESPONSES}
        for flow in self.flows.values():
            levels = {s.escalate.priority for s in flow.steps if isinstance(s, EscalateStep)}
            if not levels:
                continue
            for step in flow.steps:
                action = getattr(step, "action", None)
                if step.kind == "action" and isinstance(action, str):
                    for name in (action, f"{action}_after_hours"):
                        told.setdefault(name, set()).update(levels)
        for name, levels in sorted(told.items()):
            for index, variant in enumerate(self.domain.responses.get(name, ())):
                said = [
                    p for p, words in PRIORITY_WORDS.items() if words.search(variant.text or "")
                ]
                for priority in said:
                    if priority in levels:
                        continue
                    queue = " or ".join(sorted(levels)) if levels else "the escalation's own"
                    self.report(
                        f"response {name!r} tells the fan their case is {priority}, but the "
                        f"queue shows {queue} priority: say what the queue shows (or change "
                        "the flow's `escalate: priority`)",
                        _where(variant, "text", f"responses.{name}[{index}]"),
                    )

    def keywords(self) -> None:
        owners: dict[str, str] = {}
        for flow in self.flows.values():
            for keyword in flow.keywords:
                word = normalise(keyword)
                if word in owners and owners[word] != flow.id:
                    message = f"keyword {keyword!r} also starts flow {owners[word]!r}"
                    self.report(
                        message, flow.where("keywords", path=f"flows.{flow.id}"), warning=True
                    )
                owners.setdefault(word, flow.id)

    def long_responses(self, max_segments: int) -> None:
        for name, variants in self.domain.responses.items():
            for index, variant in enumerate(variants):
                count, encoding = sms_segments(variant.text or "")
                if count > max_segments:
                    message = (
                        f"response {name!r} is {count} SMS segments in {encoding} "
                        f"(more than {max_segments})"
                    )
                    where = _where(variant, "text", f"responses.{name}[{index}]")
                    self.report(message, where, warning=True)


def _where(model: Located, key: str, path: str) -> Location:
    return model.where(key, path=path)


def _next_targets(step: StepBase, path: str) -> Iterator[tuple[str, Location]]:
    if isinstance(step.next, str):
        yield step.next, step.where("next", path=path)
    for branch in step.next if isinstance(step.next, list) else ():
        key = "then" if isinstance(branch, NextIf) else "else"
        target = branch.then if isinstance(branch, NextIf) else branch.else_
        yield target, branch.where(key, path=f"{path}.next")


def _edges(flow: Flow) -> dict[str, list[str]]:
    """Step graph of one flow; `END`, `link` and `escalate` leave it."""
    edges: dict[str, list[str]] = {}
    for index, step in enumerate(flow.steps):
        sequential = flow.steps[index + 1].step_id if index + 1 < len(flow.steps) else END
        if step.kind in ("link", "escalate"):
            targets: list[str] = []
        elif step.next is None:
            targets = [sequential]
        elif isinstance(step.next, str):
            targets = [step.next]
        else:
            targets = [t for t, _ in _next_targets(step, "")]
            if all(isinstance(b, NextIf) for b in step.next):
                targets.append(sequential)
        edges[step.step_id] = [t for t in targets if t != END]
    return edges


def _flow_graph(flows: Mapping[str, Flow]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """All flows' steps as one graph: `link` jumps to the target's first step, `call` too and
    then goes on with the caller's next step."""
    graph: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for flow in flows.values():
        for step_id, targets in _edges(flow).items():
            graph[(flow.id, step_id)] = [(flow.id, t) for t in targets]
        for step in flow.steps:
            target = (
                flows.get(getattr(step, step.kind, "")) if step.kind in ("link", "call") else None
            )
            if target is not None:
                graph[(flow.id, step.step_id)].append((target.id, target.steps[0].step_id))
    return graph


def _reachable(start: str, edges: Mapping[str, list[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen and node in edges:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def _cycles(edges: Mapping[Any, list[Any]], nodes: set[Any]) -> list[list[Any]]:
    """One representative cycle per strongly connected group of `nodes` (Tarjan, iterative)."""
    graph = {n: [m for m in edges.get(n, []) if m in nodes] for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in graph[node]:
                        found.append(sorted(group, key=list(edges).index))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found
