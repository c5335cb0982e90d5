"""Conditions in flow content (`if:` guards, `next` branches, rejections), built on simpleeval.

Expressions are checked when content loads (syntax, names, allowed constructs) and evaluated by
the engine on every turn against five names: `slots`, `fan`, `message`, `intent` and
`active_loop` (`active_loop.name`: the imported Rasa form in progress, as Rasa's tracker has it,
else null). Evaluation
never raises for missing data: a missing key is None, and comparing None with `<` is false.
This is the only module that imports simpleeval.
"""

from __future__ import annotations

import ast
import operator
import re
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import simpleeval

CONTEXT_NAMES = frozenset({"slots", "fan", "message", "intent", "active_loop"})
LITERAL_NAMES = {"true": True, "false": False, "null": None, "none": None}
FUNCTIONS: dict[str, Callable[..., Any]] = {"len": lambda v: len(v) if v is not None else 0}

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATE_PARTS = {"year": 1, "month": 2, "day": 3}

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.List, ast.Tuple,
    ast.Subscript, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Call,
)  # fmt: skip


def check_expression(expr: str) -> ast.Expression:
    """Parse and check an expression; ValueError with a readable message when it is not allowed."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition {expr!r} is not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"condition {expr!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Name) and node.id not in _known_names():
            known = ", ".join(sorted(CONTEXT_NAMES))
            raise ValueError(f"condition {expr!r}: unknown name {node.id!r} (use {known})")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError(f"condition {expr!r}: attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
        ):
            raise ValueError(f"condition {expr!r}: only {', '.join(FUNCTIONS)}() may be called")
    return tree


def referenced_slots(expr: str) -> set[str]:
    """Slot names an expression reads as `slots.x` or `slots['x']` (for content validation)."""
    tree = check_expression(expr)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Subscript) and _is_slots(node.value):
            if isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                found.add(node.slice.value)
    return found


def evaluate(expr: str, context: Mapping[str, Any]) -> bool:
    """Truth of `expr` given the CONTEXT_NAMES mappings (missing ones are {})."""
    names = {name: context.get(name) or {} for name in CONTEXT_NAMES}
    names.update(LITERAL_NAMES)
    evaluator = _evaluator()
    evaluator.names = names
    return bool(evaluator.eval(expr, previously_parsed=_parsed(expr)))


_local = threading.local()


def _evaluator() -> _Evaluator:
    """This thread's evaluator: building one costs more than most evaluations (a turn evaluates
    every startable flow's guard), and an evaluation never calls back into another."""
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = _Evaluator(names={}, functions=FUNCTIONS)
        evaluator.operators = _OPERATORS
    return evaluator


@lru_cache(maxsize=4096)
def _parsed(expr: str) -> ast.AST:
    check_expression(expr)
    return simpleeval.SimpleEval().parse(expr.strip())


def _known_names() -> frozenset[str]:
    return CONTEXT_NAMES | LITERAL_NAMES.keys() | FUNCTIONS.keys()


def _is_slots(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "slots"


def _none_safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def compare(a: Any, b: Any) -> Any:
        try:
            return op(a, b)
        except TypeError:  # None < 3, "a" < 3: false rather than a crash mid-conversation
            return False

    return compare


_OPERATORS = {
    **simpleeval.DEFAULT_OPERATORS,
    ast.Lt: _none_safe(operator.lt),
    ast.LtE: _none_safe(operator.le),
    ast.Gt: _none_safe(operator.gt),
    ast.GtE: _none_safe(operator.ge),
    ast.In: _none_safe(lambda a, b: a in b),
    ast.NotIn: _none_safe(lambda a, b: a not in b),
    ast.Add: _none_safe(operator.add),
    ast.Sub: _none_safe(operator.sub),
}


class _Evaluator(simpleeval.SimpleEval):
    """simpleeval with dotted access into mappings only: `slots.zip`, `fan.tags`."""

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise simpleeval.FeatureNotAvailable(f"attribute {node.attr!r} is not allowed")
        value = self._eval(node.value)
        if isinstance(value, Mapping):
            return value.get(node.attr)
        if isinstance(value, str) and node.attr in _DATE_PARTS:
            # Date slots hold ISO strings; `slots.birthday.year` reads a part of the date.
            match = _ISO_DATE.match(value)
            return int(match.group(_DATE_PARTS[node.attr])) if match else None
        return None

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if isinstance(container, Mapping):
            return container.get(key)
        try:
            return container[key]
        except (IndexError, KeyError, TypeError):
            return None
