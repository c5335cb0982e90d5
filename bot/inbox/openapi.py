"""The OpenAPI 3.1 description of the inbox API (/api/v1/openapi.json), written as data.

A test checks that every route of `api.py` is described here and nothing else is.
"""

from __future__ import annotations

from typing import Any

from bot.audience.broadcast_model import STATUSES

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
        "status": {"enum": list(STATUSES)},
        "send_at": {"type": ["string", "null"], "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "recipients": _INT, "queued": _INT, "held": _INT, "sent": _INT, "delivered": _INT,
        "failed": _INT, "cancelled": _INT, "skipped": _INT, "done": _INT,
        "failed_by_code": {"type": "object", "additionalProperties": _INT},
        "opted_out_since": _INT, "replied": _INT, "running": {"type": "boolean"},
        "clicks": _INT, "winner_pending": {"type": "boolean"},
        "variants": {"type": "array", "items": {"type": "object", "properties": {
            "label": _STR, "sent": _INT, "clicks": _INT, "ctr": {"type": "number"},
            "replies": _INT, "reply_rate": {"type": "number"}, "winner": {"type": "boolean"}}}},
    },
}  # fmt: skip
_BROADCAST_ACTIONS = {
    "pause": "Hold every queued text of the broadcast (admins only)",
    "resume": "Release held texts; the scheduler finishes an interrupted enqueue (admins only)",
    "cancel": "Cancel every queued or held text (admins only)",
    "send-winner": "A/B: send the winning variant to the held fans now (admins only; once)",
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


_TID = {"name": "topic_id", "in": "path", "required": True, "schema": _INT}
_WHEN = {"type": ["string", "null"], "format": "date-time"}
_TOPIC = {
    "type": "object",
    "properties": {
        "id": _INT, "status": {"enum": ["open", "answered", "merged"]}, "label": _STR,
        "size": _INT, "fans": _INT, "examples": {"type": "array", "items": _STR},
        "guesses": {"type": "array",
                    "description": "the classifier's best guesses, averaged over the texts"},
        "oldest_at": _WHEN, "waiting_s": {"type": ["number", "null"]},
        "broadcast_id": {"type": ["integer", "null"]}, "auto_until": _WHEN,
    },
}  # fmt: skip
_TEXT = {
    "type": "object",
    "properties": {
        "message_id": _INT, "contact_id": _INT, "conversation_id": _INT, "name": _STR,
        "body": _STR, "at": {"type": "string", "format": "date-time"},
        "similarity": {"type": ["number", "null"]}, "conversation_status": _STR,
        "assignee_id": {"type": ["integer", "null"]}, "done_at": _WHEN,
        "intent": {"type": ["string", "null"], "description": "what the bot understood of it"},
        "confidence": {"type": ["number", "null"]},
        "opted_out": {"type": "boolean", "description": "the fan unsubscribed: not texted"},
    },
}  # fmt: skip
_REPLY_RESULT = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "reply_id": _INT, "fans": _INT,
                   "skipped": {"description": "fans not texted: claimed by another agent"},
                   "auto_until": _WHEN},
}  # fmt: skip
_NO_TOPIC = {"404": {"description": "no such topic"},
             "409": {"description": "the topic is not open, or the texts are not in it"}}  # fmt: skip
_TOPIC_ACTIONS = {
    "reply": ("Answer every fan in the topic: one outbox row per fan, exactly once (a retried "
              "`request_key` returns the first reply); `auto_minutes` also answers new texts "
              "that join the topic for that long",
              {"type": "object", "required": ["body"], "properties": {
                  "body": {"type": "string", "description": "{first_name} etc. per fan"},
                  "request_key": {"type": "string", "minLength": 8, "maxLength": 64},
                  "auto_minutes": {"type": "integer", "minimum": 0, "maximum": 10080}}},
              _REPLY_RESULT),
    "move": ("Move texts of this topic to another topic (`to`), or split them into a new one "
             "(`to`: null)",
             {"type": "object", "required": ["message_ids"], "properties": {
                 "message_ids": {"type": "array", "items": _INT},
                 "to": {"type": ["integer", "null"]}}},
             {"type": "object", "properties": {"ok": {"type": "boolean"}, "moved": _INT}}),
    "merge": ("Merge this topic into another", _obj(into=_INT), None),
    "rename": ("Rename the topic (the label stays pinned)", _obj(label=_STR), None),
    "auto": ("Auto-reply to new texts in the topic with its last reply: for `minutes`, "
             "`until` a time, or `off`",
             {"type": "object", "properties": {
                 "minutes": {"type": "number"}, "until": {"type": "string", "format": "date-time"},
                 "off": {"type": "boolean"}}}, None),
}  # fmt: skip
_SUGGESTION = {
    "type": "object",
    "properties": {"id": _INT, "message_id": _INT, "verdict": {"enum": ["intent", "handover"]},
                   "intent": {"type": ["string", "null"]}, "predicted": {"type": ["string", "null"]},
                   "confidence": {"type": ["number", "null"]}, "text": _STR,
                   "status": {"enum": ["new", "accepted", "rejected"]}},
}  # fmt: skip


def _topic_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/topics": {"get": _op(
            "Topics of waiting texts, largest (`order=size`) or longest waiting (`order=wait`) "
            "first, with counts",
            params=[{"name": "status", "in": "query",
                     "schema": {"enum": ["open", "answered", "merged", "all"]}},
                    {"name": "order", "in": "query", "schema": {"enum": ["size", "wait"]}},
                    {"name": "limit", "in": "query", "schema": _INT}],
            response={"type": "object", "properties": {
                "status": _STR, "order": _STR, "items": {"type": "array", "items": _TOPIC},
                "counts": {"type": "object", "properties": {
                    "open_topics": _INT, "waiting_texts": _INT, "ungrouped": _INT}}}})},
        "/api/v1/topics/{topic_id}": {"get": _op(
            "One topic: its summary, its waiting texts, the replies sent to it", params=[_TID],
            response={"type": "object", "properties": {
                "summary": _TOPIC, "texts": {"type": "array", "items": _TEXT},
                "replies": {"type": "array"}}},
            extra={"404": {"description": "no such topic"}})},
        "/api/v1/topics/regroup": {"post": _op(
            "Group the waiting texts afresh (admins only)", writes=True)},
        "/api/v1/teach": {"post": _op(
            "Make an FAQ from a topic or a thread (admins only): writes an intent with the fans' "
            "scrubbed texts, a response and a flow into the content files, validates, retrains",
            writes=True,
            body={"type": "object", "required": ["intent", "response"], "properties": {
                "topic_id": _INT, "conversation_id": _INT, "intent": _STR, "response": _STR,
                "examples": {"type": "array", "items": _STR}}},
            response={"type": "object", "properties": {
                "ok": {"type": "boolean"}, "intent": _STR, "response": _STR,
                "examples": {"type": "array", "items": _STR},
                "files": {"type": "array", "items": _STR}, "retraining": {"type": "boolean"}}},
            extra={"400": {"description": "bad input, or the edited content is not valid "
                                          "(file:line); the files are restored"}})},
        "/api/v1/messages/{message_id}/label": {"post": _op(
            "Label a bot turn (the fan's text): `intent` the bot should have answered, or "
            "`handover` was right", writes=True,
            params=[{"name": "message_id", "in": "path", "required": True, "schema": _INT}],
            body={"type": "object", "required": ["verdict"], "properties": {
                "verdict": {"enum": ["intent", "handover"]}, "intent": _STR}},
            response={"type": "object", "properties": {"ok": {"type": "boolean"},
                                                       "label_id": _INT}})},
        "/api/v1/suggestions": {"get": _op(
            "Agents' labels as suggested training examples",
            params=[{"name": "status", "in": "query",
                     "schema": {"enum": ["new", "accepted", "rejected"]}},
                    {"name": "limit", "in": "query", "schema": _INT}],
            response={"type": "object", "properties": {
                "status": _STR, "items": {"type": "array", "items": _SUGGESTION}}})},
        "/api/v1/intents": {"get": _op(
            "The loaded model's intents (for the label picker)",
            response={"type": "object", "properties": {
                "intents": {"type": "array", "items": _STR}}})},
    }  # fmt: skip
    for action, (summary, body, response) in _TOPIC_ACTIONS.items():
        paths[f"/api/v1/topics/{{topic_id}}/{action}"] = {"post": _op(
            summary, body=body, params=[_TID], writes=True, response=response,
            extra={**_NO_TOPIC, "400": {"description": "bad input (the error says which)"}})}  # fmt: skip
    label = {"name": "label_id", "in": "path", "required": True, "schema": _INT}
    for action, summary in (("accept", "Accept a suggestion (admins only): the example is "
                                       "written to data/taught.yml (`intent` may correct it)"),
                            ("reject", "Reject a suggestion (admins only)")):  # fmt: skip
        paths[f"/api/v1/suggestions/{{label_id}}/{action}"] = {"post": _op(
            summary, params=[label], writes=True,
            body={"type": "object", "properties": {"intent": _STR}} if action == "accept" else None,
            extra={"404": {"description": "no such suggestion"},
                   "409": {"description": "already decided"}})}  # fmt: skip
    return paths


_GROUP = {
    "type": "object",
    "description": "broadcast replies the bot answered with the same response, meaning the same",
    "properties": {
        "id": _INT, "status": {"enum": ["open", "right", "corrected", "taught"]}, "label": _STR,
        "headline": {"type": "string", "description": "\"229 fans got utter_x for '...'\""},
        "response": {"type": "string", "description": "the response(s) the bot gave"},
        "intent": {"type": ["string", "null"]}, "answer": {"type": "string",
                                                           "description": "what the bot texted"},
        "size": _INT, "fans": _INT, "reviewed": _INT, "corrected": _INT,
        "examples": {"type": "array", "items": _STR},
        "broadcast_id": {"type": ["integer", "null"]}, "broadcast_name": {"type": ["string", "null"]},
    },
}  # fmt: skip
_GID = {"name": "group_id", "in": "path", "required": True, "schema": _INT}
_ANSWER_ACTIONS = {
    "correct": ("Correct the bot: one follow-up text to each fan of the group, exactly once "
                "(`request_key`: a retry continues it), in their waking hours; opted-out fans "
                "get nothing", _obj(body=_STR, request_key=_STR)),
    "right": ("Mark the group right: reviewed, nothing sent (texts that join it later too)", None),
    "move": ("Move texts out of the group: into another open group the bot answered the same "
             "way (`to`), or a new one (`to`: null)",
             {"type": "object", "required": ["message_ids"], "properties": {
                 "message_ids": {"type": "array", "items": _INT},
                 "to": {"type": ["integer", "null"]}}}),
    "teach": ("Teach from the group (admins only): with `response` a new FAQ, without one the "
              "texts become examples of the existing `intent`; retrains",
              {"type": "object", "required": ["intent"], "properties": {
                  "intent": _STR, "response": _STR, "examples": {"type": "array", "items": _STR}}}),
}  # fmt: skip


def _answer_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/answers": {"get": _op(
            "Bot answers to review: broadcast replies the bot answered, grouped, most fans first",
            params=[{"name": "status", "in": "query",
                     "schema": {"enum": ["open", "right", "corrected", "taught", "all"]}},
                    {"name": "limit", "in": "query", "schema": _INT}],
            response={"type": "object", "properties": {
                "status": _STR, "items": {"type": "array", "items": _GROUP},
                "counts": {"type": "object", "properties": {"open_groups": _INT,
                                                            "texts": _INT}}}})},
        "/api/v1/answers/{group_id}": {"get": _op(
            "One group: its summary, its texts (each with its own parse), corrections sent",
            params=[_GID], response={"type": "object", "properties": {
                "group": _GROUP, "texts": {"type": "array"}, "corrections": {"type": "array"}}},
            extra={"404": {"description": "no such group"}})},
    }  # fmt: skip
    for action, (summary, body) in _ANSWER_ACTIONS.items():
        paths[f"/api/v1/answers/{{group_id}}/{action}"] = {"post": _op(
            summary, body=body, params=[_GID], writes=True,
            extra={"404": {"description": "no such group"},
                   "409": {"description": "the group or text changed meanwhile"},
                   "400": {"description": "bad input (the error says which)"}})}  # fmt: skip
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
        "/api/v1/model": {"get": _op(
            "The model this process serves and the newest retrain request (pending, training, "
            "done, failed); live: its model is loaded here")},
        "/api/v1/events": {"get": {"summary": "Server-Sent Events: message, escalation, thread, "
                                              "broadcast, topic, answers; resync (refresh)",
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
    paths.update(_topic_paths())
    paths.update(_answer_paths())  # bot answers to review (bot/inbox/review.py)
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
