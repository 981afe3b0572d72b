"""What the case, reviewer and certificate routes share: bodies, case numbers, effects.

Every body is validated by its pydantic model at the edge; a bad one is a 400 with the
first problem in plain words. Effects of a committed transition (streams, the terminal)
are carried out after the commit; if Redis is away, the approval sweep catches up.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from approval import effects
from approval import workflow as wf
from approval.store import CaseChange, CaseNotFound, CaseRefused, CaseStore
from core.replies import http_error
from signaling.appkeys import CASES, REDIS, SETTINGS

log = logging.getLogger("signaling.case_http")
CASE_NO = re.compile(r"^[0-9]{8}-[0-9A-F]{8}$")
CERT_NO = re.compile(r"^E[0-9]{8}[0-9A-F]{10}$")
M = TypeVar("M", bound=BaseModel)


def now() -> datetime:
    return datetime.now(UTC)


def store_of(request: web.Request) -> CaseStore:
    return request.app[CASES]


async def body(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise http_error(web.HTTPBadRequest, "invalid_request",
                         f"请求格式不正确：{where} {first['msg']}") from exc


def case_no_of(request: web.Request) -> str:
    case_no = request.match_info["case_no"]
    if not CASE_NO.match(case_no):
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在")
    return case_no


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()
                                 if isinstance(v, datetime | date) else str(v)))


async def carry_out(request: web.Request, change: CaseChange) -> None:
    try:
        await effects.carry_out(request.app[REDIS], change, request.app[SETTINGS].base_url)
    except RedisError as exc:
        # The change is committed in PostgreSQL; the sweep re-enqueues its open tasks.
        log.warning("approval effects deferred to the sweep", extra={
            "case_no": change.case_no, "error": repr(exc)})


def status_reply(change: CaseChange, **extra: Any) -> web.Response:
    return web.json_response({"case_no": change.case_no, "status": change.state.status,
                              "status_name": wf.STATUS_NAMES[change.state.status],
                              "certificate_no": change.state.certificate_no, **extra})


async def transition(request: web.Request, pending: Any) -> web.Response:
    try:
        change = await pending
    except CaseNotFound as exc:
        raise http_error(web.HTTPNotFound, "no_case", "办件不存在") from exc
    except CaseRefused as exc:
        raise http_error(web.HTTPConflict, "refused", str(exc)) from exc
    await carry_out(request, change)
    return status_reply(change)
