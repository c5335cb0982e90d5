"""The inbox's "Bot answers" view: broadcast replies the bot answered, grouped for review.

Off the inbound path, beside the topics routes (`topics.py`, `topic_pages.py`): the JSON API under
/api/v1/answers and the pages under /inbox/answers run the same actions (`answer_action`) on
`bot.topics.review`'s service functions, under the same rules as topics (`authorise`: every agent
reads, marks right, moves and corrects; admins teach; CSRF on every write). After commit a
correction wakes the outbox sender; every action is announced on the live hub (ids only).
"""

from __future__ import annotations

import secrets
from typing import Any

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse, json, redirect

from bot.errors import BadRequest, Conflict, Forbidden, NotFound
from bot.inbox.topic_pages import intent_name
from bot.inbox.web import Inbox, authorise, json_body
from bot.topics import review

ACTIONS = ("correct", "right", "move", "teach")
MAX_TEXTS = 5000  # message ids in one move


def review_routes(bp: Blueprint, inbox: Inbox) -> None:
    """/api/v1/answers: list, one group, and its actions."""

    @bp.get("/answers")
    async def api_list_answers(request: Request) -> HTTPResponse:
        await authorise(request, inbox)
        status = request.args.get("status", "open")
        items = await review.list_groups(inbox.db, status=status, limit=_limit(request.args))
        return json({"status": status, "counts": await review.answer_counts(inbox.db),
                     "items": [g.to_json() for g in items]})  # fmt: skip

    @bp.get("/answers/<group_id:int>")
    async def api_one_answer(request: Request, group_id: int) -> HTTPResponse:
        await authorise(request, inbox)
        return json((await review.group(inbox.db, group_id)).to_json())

    @bp.post("/answers/<group_id:int>/<action:str>")
    async def api_answer_act(request: Request, group_id: int, action: str) -> HTTPResponse:
        session = await authorise(request, inbox, admin=action == "teach")
        result = await answer_action(inbox, action, group_id, session.agent, json_body(request))
        return json({"ok": True, **result})


def review_page_routes(bp: Blueprint, inbox: Inbox, page: Any) -> None:
    """/inbox/answers: the groups, one group with its forms."""

    @bp.get("/answers")
    async def answers_page(request: Request) -> HTTPResponse:
        session = await authorise(request, inbox)
        status = request.args.get("status", "open")
        items = await review.list_groups(inbox.db, status=status)
        return page("answers.html", session=session, items=[g.to_json() for g in items],
                    counts=await review.answer_counts(inbox.db), state=status)  # fmt: skip

    @bp.get("/answers/<group_id:int>")
    async def answer_page(request: Request, group_id: int) -> HTTPResponse:
        session = await authorise(request, inbox)
        return await _group_page(page, inbox, session, group_id)

    @bp.post("/answers/<group_id:int>/<action:(correct|right|move|split|teach)>")
    async def answer_form(request: Request, group_id: int, action: str) -> HTTPResponse:
        form = request.form or {}
        session = await authorise(request, inbox, admin=action == "teach",
                                  csrf=form.get("csrf") or "")  # fmt: skip
        try:
            data = _form_data(action, form)
            result = await answer_action(inbox, "move" if action == "split" else action,
                                         group_id, session.agent, data)  # fmt: skip
        except (BadRequest, Conflict, NotFound) as exc:
            return await _group_page(page, inbox, session, group_id, str(exc), exc.status, form)
        if action in ("move", "split"):
            return redirect(f"/inbox/answers/{result['to']}", status=303)
        return redirect(f"/inbox/answers/{group_id}?done={action}", status=303)


async def answer_action(
    inbox: Inbox, action: str, group_id: int, agent: Any, data: dict[str, Any]
) -> dict[str, Any]:
    """Run one action on a group after checking its input; wake the sender, announce it."""
    db = inbox.db
    result: dict[str, Any]
    if action == "correct":
        body, key = data.get("body"), data.get("request_key")
        if not isinstance(body, str) or not body.strip():
            raise BadRequest("`body` must be the follow-up text")
        if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 64):
            raise BadRequest("`request_key` must be a string of 1 to 64 characters")
        result = (await review.correct(db, agent, group_id, body, request_key=key)).to_json()
        inbox.notify_outbox()  # committed: the sender may take the fans' texts now
    elif action == "right":
        result = {"reviewed": await review.mark_right(db, agent, group_id)}
    elif action == "move":
        ids, to = data.get("message_ids"), data.get("to")
        if (not isinstance(ids, list) or not 0 < len(ids) <= MAX_TEXTS
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):  # fmt: skip
            raise BadRequest(f"`message_ids` must be a list of 1 to {MAX_TEXTS} message ids")
        if to is not None and (isinstance(to, bool) or not isinstance(to, int)):
            raise BadRequest("`to` must be a group id, or null for a new group")
        result = {"to": await review.move_texts(db, agent, ids, to), "moved": len(set(ids))}
    elif action == "teach":
        result = (await _teach(inbox, agent, group_id, data)).to_json()
    else:
        raise NotFound("no such action")
    inbox.hub.publish("answers", {"group_id": group_id, "action": action, "agent_id": agent.id})
    return result


async def _teach(inbox: Inbox, agent: Any, group_id: int, data: dict[str, Any]) -> Any:
    if not agent.is_admin:
        raise Forbidden("only admins teach the bot")
    teacher = inbox.teacher()
    if teacher is None:
        raise BadRequest("teaching needs the running server's content and model")
    intent, response, examples = data.get("intent"), data.get("response"), data.get("examples")
    if not isinstance(intent, str) or not intent.strip():
        raise BadRequest("`intent` must be a non-empty string")
    if response is not None and not isinstance(response, str):
        raise BadRequest("`response` must be the answer's text (or absent: add examples)")
    if examples is not None and (
        not isinstance(examples, list) or not all(isinstance(e, str) for e in examples)
    ):
        raise BadRequest("`examples` must be a list of strings")
    return await review.teach(inbox.db, teacher, agent, group_id, intent=intent.strip(),
                              response=(response or "").strip() or None, examples=examples)  # fmt: skip


async def _group_page(
    page: Any, inbox: Inbox, session: Any, group_id: int, error: str = "", code: int = 200,
    form: Any = None,
) -> HTTPResponse:  # fmt: skip
    detail = (await review.group(inbox.db, group_id)).to_json()
    others = [g.to_json() for g in await review.list_groups(inbox.db, status="open")]
    form = form or {}
    teach = None
    if session.agent.is_admin:
        teach = {"intent": form.get("intent") or intent_name(detail["group"]["label"]),
                 "response": form.get("response") or "",
                 "examples": await review.group_examples(inbox.db, group_id)}  # fmt: skip
    same = [g for g in others
            if g["id"] != group_id and g["response"] == detail["group"]["response"]]  # fmt: skip
    return page("answer.html", code, session=session, group=detail["group"],
                texts=detail["texts"], corrections=detail["corrections"], others=same,
                teach=teach, error=error, request_key=secrets.token_urlsafe(18),
                draft=form.get("body") or "")  # fmt: skip


def _form_data(action: str, form: Any) -> dict[str, Any]:
    """A group form's fields as the API's JSON (the checks live in `answer_action`)."""
    if action == "correct":
        return {"body": form.get("body") or "", "request_key": form.get("request_key") or None}
    if action in ("move", "split"):
        ids = [_whole(i, "message id") for i in form.getlist("message_ids") or []]
        if not ids:
            raise BadRequest("tick the texts to move first")
        to = (form.get("to") or "") if action == "move" else ""
        if action == "move" and not to:
            raise BadRequest("choose the group to move the texts to")
        return {"message_ids": ids, "to": _whole(to, "group id") if to else None}
    if action == "teach":
        ticked = form.getlist("examples") or []
        return {"intent": form.get("intent") or "", "response": form.get("response") or None,
                "examples": ticked}  # fmt: skip
    return {}


def _whole(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"the {what} must be a whole number") from exc


def _limit(args: Any) -> int:
    try:
        limit = int(args.get("limit") or 100)
    except ValueError as exc:
        raise BadRequest("`limit` must be an integer") from exc
    if not 1 <= limit <= 500:
        raise BadRequest("`limit` is between 1 and 500")
    return limit
