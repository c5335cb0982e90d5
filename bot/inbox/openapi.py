"""The OpenAPI 3.1 description of the inbox API (/api/v1/openapi.json), written as data.

A test checks that every route of `api.py` is described here and nothing else is.
"""

from __future__ import annotations

from typing import Any

_ID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_OK = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
_ERRORS = {
    "401": {"description": "no session: log in first"},
    "403": {"description": "CSRF token missing or wrong, or admins only"},
}


def _op(summary: str, *, body: dict[str, Any] | None = None, params: list[Any] | None = None,
        writes: bool = False, response: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": response or _OK}},
            },
            **_ERRORS,
            **(extra or {}),
        },
    }
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}  # fmt: skip
    if writes:
        op["parameters"] = [*op.get("parameters", []),
                            {"name": "X-CSRF-Token", "in": "header", "required": True,
                             "schema": {"type": "string"}}]  # fmt: skip
    return op


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


_STR = {"type": "string"}
_CONFLICT = {"409": {"description": "another agent owns the thread, or it is with the bot"}}
_ACTIONS = {
    "claim": ("Claim an unassigned thread (exactly one concurrent claimer wins)", None),
    "reply": ("Text the fan as an agent (queued in the outbox, sent after commit)", _obj(body=_STR)),
    "notes": ("Add a private note (never sent)", _obj(body=_STR)),
    "tags": ("Add and remove tags on the fan's profile",
             {"type": "object", "properties": {"add": {"type": "array", "items": _STR},
                                               "remove": {"type": "array", "items": _STR}}}),
    "resolve": ("Resolve: the fan goes back to the bot", None),
    "snooze": ("Snooze until a time (`until`, ISO 8601) or for `minutes`",
               {"type": "object", "properties": {"until": {"type": "string", "format": "date-time"},
                                                 "minutes": {"type": "number"}}}),
    "reassign": ("Hand the thread to another agent (`agent_id`), or back to the queue (null)",
                 {"type": "object", "properties": {"agent_id": {"type": ["integer", "null"]}}}),
}  # fmt: skip


_INT = {"type": "integer"}
_BID = {"name": "broadcast_id", "in": "path", "required": True, "schema": _INT}
_PROGRESS = {
    "type": "object",
    "properties": {
        "id": _INT, "name": _STR,
        "status": {"enum": ["draft", "scheduled", "enqueuing", "sending", "paused", "cancelled"]},
        "send_at": {"type": ["string", "null"], "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "recipients": _INT, "queued": _INT, "held": _INT, "sent": _INT, "delivered": _INT,
        "failed": _INT, "cancelled": _INT, "done": _INT,
        "failed_by_code": {"type": "object", "additionalProperties": _INT},
        "opted_out_since": _INT, "replied": _INT, "running": {"type": "boolean"},
    },
}  # fmt: skip
_BROADCAST_ACTIONS = {
    "pause": "Hold every queued text of the broadcast (admins only)",
    "resume": "Release held texts; the scheduler finishes an interrupted enqueue (admins only)",
    "cancel": "Cancel every queued or held text (admins only)",
}


def _broadcast_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/broadcasts": {"get": _op(
            "The 20 newest broadcasts with live progress; `running` while any is still changing",
            response={"type": "object", "properties": {
                "items": {"type": "array", "items": _PROGRESS}, "running": {"type": "boolean"}}})},
        "/api/v1/broadcasts/{broadcast_id}": {"get": _op(
            "One broadcast's progress: queued, sent, delivered, failed by error code, opted out",
            params=[_BID], response=_PROGRESS, extra={"404": {"description": "no such broadcast"}})},
    }  # fmt: skip
    for action, summary in _BROADCAST_ACTIONS.items():
        paths[f"/api/v1/broadcasts/{{broadcast_id}}/{action}"] = {"post": _op(
            summary, params=[_BID], writes=True,
            response={"type": "object", "properties": {
                "ok": {"type": "boolean"}, "texts": _INT, "broadcast": _PROGRESS}},
            extra={"404": {"description": "no such broadcast"},
                   "409": {"description": "the broadcast is not in a state that allows this"}})}  # fmt: skip
    return paths


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                         "responses": {"200": {"description": "OK"}}}},
        "/api/v1/session": {
            "post": {**_op("Log in; sets the HTTP-only session cookie",
                           body=_obj(username=_STR, password=_STR),
                           extra={"429": {"description": "too many failed logins (Retry-After)"}}),
                     "security": []},
            "get": _op("The logged-in agent and the session's CSRF token"),
            "delete": _op("Log out", writes=True),
        },
        "/api/v1/queue": {"get": _op(
            "The queue, most urgent then longest waiting first",
            params=[{"name": "view", "in": "query", "schema": {
                        "enum": ["unassigned", "mine", "all", "snoozed", "missed"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}}])},
        "/api/v1/conversations/{conversation_id}": {"get": _op(
            "A thread: timeline with intents, escalation, the fan's profile", params=[_ID])},
        "/api/v1/canned-replies": {"get": _op("Canned replies from canned_replies.yml")},
        "/api/v1/stats": {"get": _op("Service timers: first response and resolution p50/p90",
                                     params=[{"name": "days", "in": "query",
                                              "schema": {"type": "number"}}])},
        "/api/v1/events": {"get": {"summary": "Server-Sent Events: message, escalation, thread, "
                                              "broadcast",
                                   "responses": {"200": {"description": "text/event-stream"},
                                                 **_ERRORS}}},
        "/api/v1/agents": {
            "get": _op("Agents (admins see disabled ones too)"),
            "post": _op("Add an agent (admins only)", writes=True,
                        body=_obj(username=_STR, password=_STR, role={"enum": ["admin", "agent"]},
                                  display_name=_STR)),
        },
    }  # fmt: skip
    for state in ("disable", "enable"):
        paths[f"/api/v1/agents/{{username}}/{state}"] = {"post": _op(
            f"{state.capitalize()} an agent (admins only)", writes=True,
            params=[{"name": "username", "in": "path", "required": True, "schema": _STR}])}  # fmt: skip
    paths.update(_broadcast_paths())
    for action, (summary, body) in _ACTIONS.items():
        paths[f"/api/v1/conversations/{{conversation_id}}/{action}"] = {
            "post": _op(summary, body=body, params=[_ID], writes=True, extra=_CONFLICT)
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Fanline inbox API", "version": "1",
                 "description": "Sessions are HTTP-only cookies from POST /api/v1/session; every "
                                "state-changing call also needs the X-CSRF-Token header."},
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "fanline_session"}}},
        "security": [{"session": []}],
        "paths": paths,
    }  # fmt: skip
