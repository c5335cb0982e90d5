"""Custom actions through the real rasa-sdk: step 7 of the message's path (`RunAction`).

The flow engine stops at a `RunAction`; the pipeline turns it into an `ActionCall`, and
`ActionRunner.run` executes it either in-process, through rasa_sdk's `ActionExecutor`, or on a
standard action server (`python -m rasa_sdk --actions actions`) over Rasa's wire protocol. Both
modes send the same JSON payload Rasa's server would post to `/webhook` and read back the same
`{"events": [...], "responses": [...]}`, which becomes an `ActionResult` (slot sets, dispatched
messages, other events) for `engine.resume`.

rasa_sdk and httpx are imported here and nowhere else in the engine.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import pkgutil
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import httpx
import rasa_sdk
from rasa_sdk import utils as sdk_utils
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import Action, ActionExecutionRejection

from bot.errors import ActionError, ConfigError, Location
from bot.messages import Prediction

logger = logging.getLogger(__name__)

# The tracker's latest action before a custom action runs, as Rasa reports it after a user turn.
_LISTEN = "action_listen"
# An empty Rasa domain; the executor refuses a call without a domain (HTTP 449).
_EMPTY_DOMAIN: dict[str, Any] = {
    "version": "3.1",
    "session_config": {},
    "config": {},
    "intents": [],
    "entities": [],
    "slots": {},
    "responses": {},
    "actions": [],
    "forms": {},
    "e2e_actions": [],
}
_E164 = re.compile(r"^\+?\d{7,15}$")
_ERROR_DETAIL_LIMIT = 200


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One custom action to run for one fan, with the dialogue state it may read."""

    name: str
    sender_id: str  # our internal contact id as a string, NEVER a phone number
    slots: Mapping[str, Any]
    latest_message: Mapping[str, Any]  # {"text", "intent": {"name", "confidence"}, "entities"}
    active_flow: str | None
    events: Sequence[dict] = ()  # Rasa-shaped past events, when the action needs history
    active_loop: str | None = None  # the Rasa form in progress (`tracker.active_loop`)

    def __post_init__(self) -> None:
        # The action server is another process (maybe another host): keep phone numbers off it.
        if _E164.match(self.sender_id):
            raise ValueError("ActionCall.sender_id must be a contact id, not a phone number")


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did: slots it set, messages it dispatched, any other events."""

    slots: Mapping[str, Any]
    messages: tuple[Mapping[str, Any], ...]
    other_events: tuple[dict, ...]


class ActionRunner:
    """Runs custom actions in-process (`package`) or on an action server (`endpoint_url`).

    An `endpoint_url` wins: every action then runs on the server and `package` is not imported,
    so the engine does not need the actions' dependencies (that is why one runs a server).
    """

    def __init__(
        self,
        *,
        package: str | None = "actions",
        endpoint_url: str | None = None,
        domain: Mapping[str, Any] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"action timeout must be positive, got {timeout_s}")
        self._timeout_s = timeout_s
        self._domain = _jsonable(dict(domain) if domain is not None else _EMPTY_DOMAIN)
        self._endpoint_url = endpoint_url
        self._executor: ActionExecutor | None = None
        self._client: httpx.AsyncClient | None = None
        if endpoint_url and not endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(f"action_endpoint url must be http(s)://..., got {endpoint_url!r}")
        if endpoint_url:
            # trust_env=False: an HTTP(S)_PROXY meant for the internet must not catch this call.
            self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)
        elif package:
            self._executor = _executor_for(package)

    def use_forms(self, forms: Mapping[str, Any]) -> None:
        """The domain's `forms:` in what actions are sent: a FormValidationAction reads its
        form's `required_slots` there to know which slots it validates."""
        self._domain = {**self._domain, "forms": _jsonable(dict(forms))}

    def known_actions(self) -> set[str]:
        """Names of the actions registered in-process; empty in remote mode."""
        return set(self._executor.actions) if self._executor else set()

    async def remote_actions(self) -> set[str]:
        """Names the action server lists at `GET <server>/actions`; empty in in-process mode."""
        if self._client is None or not self._endpoint_url:
            return set()
        url = _actions_url(self._endpoint_url)
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            return {item["name"] for item in response.json()}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ActionError(f"could not list actions at {url}: {exc}") from exc

    async def run(self, call: ActionCall) -> ActionResult:
        """Run one action; any failure, rejection, timeout or unknown name raises ActionError."""
        try:
            payload = _jsonable(_action_payload(call, self._domain))
        except (TypeError, ValueError) as exc:
            raise ActionError(f"custom action '{call.name}': state is not JSON: {exc}") from exc
        started = time.perf_counter()
        if self._client is not None:
            body = await self._run_remote(call.name, payload)
        elif self._executor is not None:
            body = await self._run_in_process(call.name, payload)
        else:
            raise ActionError(f"unknown custom action '{call.name}': no actions are configured")
        result = _result_from(call.name, body)
        logger.debug(
            "action %s for contact %s: %d slot(s), %d message(s) in %.1f ms",
            call.name,
            call.sender_id,
            len(result.slots),
            len(result.messages),
            (time.perf_counter() - started) * 1000,
        )
        return result

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _run_in_process(self, name: str, payload: dict) -> Any:
        assert self._executor is not None
        if name not in self._executor.actions:
            known = ", ".join(sorted(self._executor.actions)) or "none"
            raise ActionError(f"unknown custom action '{name}' (registered: {known})")
        # Only cancels at an await: a blocking synchronous action cannot be interrupted
        # in-process. Slow I/O belongs in async actions or on the action server.
        deadline = asyncio.timeout(self._timeout_s)
        try:
            async with deadline:
                result = await self._executor.run(payload)
        except TimeoutError as exc:
            if deadline.expired():
                raise ActionError(
                    f"custom action '{name}' timed out after {self._timeout_s}s"
                ) from exc
            raise _raised(name, exc) from exc
        except ActionExecutionRejection as exc:
            raise ActionError(f"custom action '{name}' rejected execution: {exc}") from exc
        except Exception as exc:  # an action's bug must fail the turn, not the engine
            raise _raised(name, exc) from exc
        return result.model_dump() if result is not None else None

    async def _run_remote(self, name: str, payload: dict) -> Any:
        assert self._client is not None and self._endpoint_url
        url = self._endpoint_url
        try:
            # httpx's timeout is per read/write; this bounds the whole exchange.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post(url, json=payload)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ActionError(
                f"custom action '{name}' timed out after {self._timeout_s}s at {url}"
            ) from exc
        except httpx.HTTPError as exc:
            raise ActionError(
                f"custom action '{name}': action server {url} unreachable: {exc}"
            ) from exc
        return _remote_body(name, url, response)


def _raised(name: str, exc: BaseException) -> ActionError:
    return ActionError(f"custom action '{name}' raised {type(exc).__name__}: {_clip(str(exc))}")


def _executor_for(package: str) -> ActionExecutor:
    """An executor holding exactly the `Action` subclasses defined under `package`."""
    modules = _import_package(package)
    executor = ActionExecutor()
    # rasa_sdk's register_package registers every Action subclass imported anywhere in the
    # process (and exits the process on ImportError); registering per module keeps two
    # runners with different packages apart and turns import errors into ConfigErrors.
    for cls in sdk_utils.all_subclasses(Action):
        if cls.__module__ in modules and _of_module_now(cls) and not inspect.isabstract(cls):
            executor.register_action(cls)
    return executor


def _of_module_now(cls: type) -> bool:
    """Not a class of an earlier import of a module of the same name (another project's
    `actions`, still referenced): its methods' globals are that module's, not the current one's."""
    module = sys.modules.get(cls.__module__)
    if module is None:
        return False
    current = vars(module)
    scopes = [g for f in vars(cls).values()
              if (g := getattr(getattr(f, "__func__", f), "__globals__", None)) is not None]  # fmt: skip
    return not scopes or any(g is current for g in scopes)


def _import_package(package: str) -> set[str]:
    """Import a module or package and its submodules; returns their names."""
    names = [package]
    try:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
            importlib.import_module(info.name)
            names.append(info.name)
    except SyntaxError as exc:
        where = Location(exc.filename or package, exc.lineno)
        raise ConfigError(f"custom actions do not compile: {exc.msg}", where) from exc
    except ImportError as exc:
        raise ConfigError(f"cannot import custom actions package '{package}': {exc}") from exc
    except Exception as exc:  # a module-level bug in the actions: say so at start-up
        raise ConfigError(
            f"importing custom actions package '{package}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    return set(names)


def _action_payload(call: ActionCall, domain: dict) -> dict[str, Any]:
    """The body Rasa posts to an action server for `call` (rasa.core.actions.action)."""
    stack = []
    if call.active_flow:
        stack.append(
            {
                "frame_id": call.active_flow,
                "flow_id": call.active_flow,
                "step_id": call.name,
                "frame_type": "regular",
                "type": "flow",
            }
        )
    tracker = {
        "sender_id": call.sender_id,
        "slots": dict(call.slots),
        "latest_message": _parse_data(call.latest_message),
        "latest_event_time": time.time(),
        "followup_action": None,
        "paused": False,
        "stack": stack,
        "events": list(call.events),
        "latest_input_channel": None,
        # rasa-sdk's `tracker.active_loop` / `active_form`: the imported form in progress
        "active_loop": {"name": call.active_loop} if call.active_loop else {},
        "latest_action": {"action_name": _LISTEN},
        "latest_action_name": _LISTEN,
    }
    return {
        "next_action": call.name,
        "sender_id": call.sender_id,
        "tracker": tracker,
        "domain": domain,
        # We stand in for a Rasa of the SDK's own minor version, so the SDK's compatibility
        # check (which warns on a mismatch or a missing version) stays quiet.
        "version": rasa_sdk.__version__,
    }


def latest_message_from(
    prediction: Prediction, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`ActionCall.latest_message` for an NLU `Prediction`, shaped like Rasa's parse data.

    `metadata` travels as-is (e.g. `{"fan": profile}`); leave the phone number out of it.
    """
    intent = {"name": prediction.intent, "confidence": prediction.confidence}
    ranking = [{"name": name, "confidence": conf} for name, conf in prediction.ranking]
    entities = [
        {k: v for k, v in asdict(entity).items() if v is not None} for entity in prediction.entities
    ]
    message: dict[str, Any] = {
        "text": prediction.text,
        "intent": intent,
        "intent_ranking": ranking or [intent],
        "entities": entities,
    }
    if prediction.retrieval_intent:
        message["response_selector"] = {
            "default": {"response": {"intent_response_key": prediction.retrieval_intent}}
        }
    if metadata:
        message["metadata"] = dict(metadata)
    return message


def _parse_data(latest_message: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the parse-data keys rasa-sdk helpers expect (`entities`, `intent_ranking`)."""
    message = dict(latest_message)
    message.setdefault("entities", [])
    if message.get("intent") and not message.get("intent_ranking"):
        message["intent_ranking"] = [message["intent"]]
    return message


def _remote_body(name: str, url: str, response: httpx.Response) -> Any:
    """The JSON of a 200, or the action server's error mapped to an ActionError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status == 200 and body is not None:
        return body
    detail = _clip(str(body.get("error"))) if isinstance(body, dict) else ""
    if status == 200:
        raise ActionError(f"custom action '{name}': {url} answered 200 without a JSON result")
    if status == 400 and isinstance(body, dict) and "action_name" in body:
        raise ActionError(f"custom action '{name}' rejected execution: {detail}")
    if status == 404:
        raise ActionError(f"unknown custom action '{name}' on the action server at {url}")
    if status == 449:
        raise ActionError(f"custom action '{name}': the action server at {url} wants the domain")
    if status == 500:
        raise ActionError(f"custom action '{name}' failed on the action server: {detail}")
    raise ActionError(f"custom action '{name}': {url} answered HTTP {status} {detail}".rstrip())


def _result_from(name: str, body: Any) -> ActionResult:
    """Split `{"events": [...], "responses": [...]}` into slots, messages and other events."""
    if not isinstance(body, dict):
        raise ActionError(f"custom action '{name}' returned no result")
    events, responses = body.get("events") or [], body.get("responses") or []
    if not isinstance(events, list) or not isinstance(responses, list):
        raise ActionError(f"custom action '{name}' returned a malformed result")
    slots: dict[str, Any] = {}
    others: list[dict] = []
    for event in events:
        if not isinstance(event, dict) or not event.get("event"):
            raise ActionError(f"custom action '{name}' returned an event without a type")
        if event["event"] == "slot" and isinstance(event.get("name"), str):
            slots[event["name"]] = event.get("value")
        else:
            others.append(event)
    messages = tuple(MappingProxyType(_compact(m)) for m in responses if isinstance(m, dict))
    return ActionResult(MappingProxyType(slots), messages, tuple(others))


def _compact(message: dict) -> dict:
    """A dispatcher message without its empty fields and the deprecated `template` alias."""
    return {
        key: value
        for key, value in message.items()
        if key != "template" and value is not None and value != [] and value != {}
    }


def _actions_url(endpoint_url: str) -> str:
    base = endpoint_url.rstrip("/")
    base = base.removesuffix("/webhook")
    return f"{base}/actions"


def _jsonable(value: Any) -> Any:
    """The value as it arrives after a JSON round trip, so both modes see identical payloads."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_DETAIL_LIMIT else text[:_ERROR_DETAIL_LIMIT] + "..."
