"""Flows: the content model, its loader and validator, and the pure engine (message path step 7).

load_flows / load_domain   YAML -> models, file:line errors
validate_content           cross-checks of flows against the domain and NLU
FlowEngine                 state + turn input -> progress (commands)
"""

from bot.flows.conditions import check_expression, evaluate
from bot.flows.engine import FlowEngine
from bot.flows.loader import load_domain, load_flows, read_yaml
from bot.flows.model import END, Domain, Flow, FlowFile, ResponseVariant, Slot
from bot.flows.responses import RenderedResponse, Responses
from bot.flows.slot_types import parse_slot_value
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
from bot.flows.validate import validate_content
from bot.sms import sms_segments

__all__ = [
    "END",
    "Command",
    "DialogueState",
    "Domain",
    "Flow",
    "FlowEnded",
    "FlowEngine",
    "FlowFile",
    "FlowStarted",
    "Frame",
    "HandOff",
    "Progress",
    "RenderedResponse",
    "ResponseVariant",
    "Responses",
    "RunAction",
    "Say",
    "SetSlot",
    "Slot",
    "StepTaken",
    "Subscribe",
    "TagFan",
    "TurnInput",
    "Unsubscribe",
    "Wait",
    "check_expression",
    "evaluate",
    "load_domain",
    "load_flows",
    "parse_slot_value",
    "read_yaml",
    "sms_segments",
    "validate_content",
]
