"""The reviewers' REST routes: my queue, take the next task, decide it; the figures of
the approval side and its dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from approval import streams
from approval import workflow as wf
from approval.store import CaseNotFound, CaseRefused
from core import keys
from core.replies import http_error
from signaling.appkeys import REDIS, SETTINGS
from signaling.auth import Session, require_session
from signaling.case_http import CASE_NO, body, carry_out, now, status_reply, store_of


class DecisionRequest(BaseModel):
    case_no: str = Field(pattern=CASE_NO.pattern)
    seq: int = Field(ge=1, le=1000)
    group: str = Field(min_length=1, max_length=64)
    decision: wf.ReviewDecision
    comment: str = Field(default="", max_length=2000)
    message_id: str | None = Field(default=None, pattern=r"^[0-9]+-[0-9]+$")


async def _reviewer(request: web.Request) -> Session:
    session = await require_session(request, "reviewer")
    await streams.mark_online(request.app[REDIS], session.who, session.review_groups,
                              request.app[SETTINGS].reviewer_online_ttl_s)
    return session


async def reviewer_queue(request: web.Request) -> web.Response:
    """My tasks (held in the streams) and what waits in my groups (from PostgreSQL)."""
    session = await _reviewer(request)
    redis = request.app[REDIS]
    held = []
    for g in session.review_groups:
        for task in await streams.held_by(redis, g, session.who, count=100):
            if await streams.is_queued(redis, task):
                held.append(task.to_json())
            else:  # decided by someone else, or the step ended: nothing left to do
                await streams.ack(redis, task)
    waiting = await store_of(request).queue(session.review_groups)
    return web.json_response({"reviewer": session.who, "display_name": session.display_name,
                              "groups": session.review_groups, "held": held,
                              "waiting": waiting})


async def _held(redis: Any, groups: list[str], reviewer: str) -> streams.Task | None:
    """Work already assigned to me (办件随机分配) comes before new work."""
    for g in groups:
        mine = await streams.held_by(redis, g, reviewer, count=1)
        if mine:
            return mine[0]
    return None


async def reviewer_claim(request: web.Request) -> web.Response:
    session = await _reviewer(request)
    redis = request.app[REDIS]
    task = await _held(redis, session.review_groups, session.who)
    if task is None:
        task = await streams.claim(redis, session.review_groups, session.who)
    if task is None:  # the sweep may have just handed new work to me
        task = await _held(redis, session.review_groups, session.who)
    return web.json_response({"task": None if task is None else task.to_json()})


async def reviewer_decide(request: web.Request) -> web.Response:
    session = await _reviewer(request)
    decision = await body(request, DecisionRequest)
    if decision.group not in session.review_groups:
        raise http_error(web.HTTPForbidden, "not_your_group", "您不属于该审查部门")
    redis = request.app[REDIS]
    task_ref = streams.task_id(decision.case_no, decision.seq, decision.group)
    # 办件随机分配 / 领取: only a task assigned to (or claimed by) this reviewer is decided.
    mine = [t for t in await streams.held_by(redis, decision.group, session.who, count=100)
            if t.task_id == task_ref]
    if not mine:
        raise http_error(web.HTTPForbidden, "not_assigned", "这件办件没有分给您，请先领取")
    try:
        change = await store_of(request).decide(
            decision.case_no, decision.seq, decision.group, session.who, decision.decision,
            decision.comment, now())
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    except CaseRefused as exc:
        raise http_error(web.HTTPBadRequest, "refused", str(exc)) from exc
    if change.applied == "stale":
        raise http_error(web.HTTPConflict, "stale", "该环节已结束或已由他人处理")
    await carry_out(request, change)
    for task in mine:
        await streams.ack(redis, task)
    return status_reply(change, applied=change.applied)


async def approval_figures(request: web.Request) -> web.Response:
    """Counters, overdue steps (red on the supervisor page) and dead letters."""
    await require_session(request, "reviewer", "qa", "admin")
    redis = request.app[REDIS]
    overdue = await redis.zrange(keys.approval_overdue(), 0, 99)
    day_ago = datetime.fromtimestamp(now().timestamp() - 86400, UTC)
    return web.json_response({
        "steps_last_24h": await store_of(request).step_figures(day_ago),
        "counters": await redis.hgetall(keys.approval_figures()),
        "overdue": overdue, "overdue_count": await redis.zcard(keys.approval_overdue()),
        "dead_letters": await redis.llen(keys.approval_dead()),
        "queued": await redis.scard(keys.approval_queued())})


async def dead_letters(request: web.Request) -> web.Response:
    """Tasks that failed too often, newest first, for an administrator to look into."""
    await require_session(request, "admin")
    raw = await request.app[REDIS].lrange(keys.approval_dead(), 0, 199)
    return web.json_response({"dead_letters": [json.loads(r) for r in raw]})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/reviewer/queue", reviewer_queue)
    app.router.add_post("/api/reviewer/claim", reviewer_claim)
    app.router.add_post("/api/reviewer/decide", reviewer_decide)
    app.router.add_get("/api/approval/figures", approval_figures)
    app.router.add_get("/api/approval/dead", dead_letters)
