"""The supervisor's live view: `/ws/supervisor` pushes the service as it stands.

One loop per node builds the view once a second while a supervisor page is open there
(never per page): queues per item, clerks by state and time in state, live calls, and,
every `DAY_REFRESH_S`, today's figures and the charts from PostgreSQL (`visit_events`,
`ratings`, `case_steps`). A page gets a snapshot when it connects, then only the parts
that changed, at most one message a second (changes in between are coalesced). A page
that cannot keep up (a send taking longer than `SEND_TIMEOUT_S`) is closed; it reconnects
and starts again from a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.tables import case_steps
from core import keys
from core.call_events import CallEventKind
from core.clock import Clock
from core.messages import (
    SupervisorCall,
    SupervisorClerk,
    SupervisorDay,
    SupervisorItem,
    SupervisorSnapshot,
    SupervisorUpdate,
)
from core.ops_figures import (
    Rating,
    RatingEvent,
    StepTiming,
    VisitEvent,
    VisitKind,
    buckets,
    call_figures,
    satisfaction,
    step_figures,
)
from core.ops_tables import followups, ratings, visit_events
from core.qa_tables import call_events
from core.redis_text import str_map
from core.replies import http_error
from core.states import ClerkActivity, ClerkStatus
from signaling import work_calendar
from signaling.appkeys import CASES, CLOCK, ENGINE, REDIS, SETTINGS
from signaling.auth import current_session, session_id
from signaling.node import NODE, SignalingNode
from signaling.queue_records import CallRecord, ClerkRecord
from signaling.sessions import SOCKETS
from signaling.visit_log import VisitCopier

log = logging.getLogger("signaling.supervisor")

PUSH_INTERVAL_S = 1.0  # the most a page is sent: one message a second
DAY_REFRESH_S = 10.0  # today's figures and charts (PostgreSQL), when nothing new came
DAY_STALE_S = 2.0  # after new visit events, at most this often
SEND_TIMEOUT_S = 5.0
ANSWER_WITHIN_S = 20.0  # service level: answered within this many seconds
HISTORY_DAYS = 30
MAX_ROWS = 500  # clerks and calls listed; more are counted, not listed
HEAD_SAMPLE = 50  # tickets read per item to find the longest wait
# The service's day is China's day, whatever the server's zone.
SERVICE_TZ = timezone(timedelta(hours=8))
CATALOGUE_RELOAD_S = 30.0
COPY_INTERVAL_S = 0.2  # between batches; a batch waits up to 1 s for entries
WATCHERS = ("admin", "supervisor")


def day_start(now: float) -> float:
    local = datetime.fromtimestamp(now, SERVICE_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def clerk_state(c: ClerkRecord) -> str:
    if c.status == ClerkStatus.OFFLINE:
        return "offline"
    if c.state != ClerkActivity.IDLE:
        return c.state.value
    return "ready" if c.status == ClerkStatus.READY else "not_ready"


@dataclass
class StateClock:
    """When each clerk's shown state began, as this node saw it change (pure, `now` in)."""

    seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    def since(self, c: ClerkRecord, state: str, call: CallRecord | None, now: float) -> float:
        if state == "in_call" and call is not None:
            return call.started_at
        if state == "ready" and c.idle_since:
            return c.idle_since
        prev = self.seen.get(c.username)
        if prev is None or prev[0] != state:
            self.seen[c.username] = (state, now)
            return now
        return prev[1]


class SupervisorView:
    def __init__(self, node: SignalingNode, engine: AsyncEngine, clock: Clock) -> None:
        self.node = node
        self.engine = engine
        self.clock = clock
        self.pages: set[web.WebSocketResponse] = set()
        self.states = StateClock()
        self.sent: dict[str, str] = {}  # section → its JSON as last sent
        self.day: SupervisorDay | None = None
        self.day_at = 0.0
        self.day_stale = False
        self.identity: dict[str, str] = {}
        self.busy_s = 0.0  # time spent building views (the benchmark reads it)

    # --- building -------------------------------------------------------------------

    async def items(self, now: float) -> list[SupervisorItem]:
        store = self.node.store
        out = []
        for code, item in sorted(self.node.catalogue.items.items()):
            head = await store.queue_view(code)
            longest = 0
            if head:
                # One round trip for the head's join times (priority may reorder them).
                async with store.r.pipeline(transaction=False) as pipe:
                    for t, _ in head[:HEAD_SAMPLE]:
                        pipe.hget(keys.ticket(t), "enqueued_at")
                    joined = [float(x) for x in await pipe.execute() if x]
                longest = max(0, int(now - min(joined, default=now)))
            out.append(SupervisorItem(item_code=code, item_name=item.name, waiting=len(head),
                                      longest_wait_s=longest))
        return out

    async def people(self, now: float) -> tuple[list[SupervisorClerk], list[SupervisorCall]]:
        store = self.node.store
        clerks, calls = [], []
        listed = (await store.all_clerks())[:MAX_ROWS]
        talking = [c.call_id for c in listed if c.call_id and clerk_state(c) == "in_call"]
        async with store.r.pipeline(transaction=False) as pipe:
            for call_id in talking:
                pipe.hgetall(keys.call(call_id))
            found = [CallRecord.from_hash(str_map(h)) for h in await pipe.execute()
                     if h and h.get("call_id")]
        by_id = {c.call_id: c for c in found}
        for c in listed:
            state = clerk_state(c)
            call = by_id.get(c.call_id) if state == "in_call" else None
            clerks.append(SupervisorClerk(
                username=c.username, display_name=c.display_name, state=state,
                reason=c.reason if state == "not_ready" else "",
                since=self.states.since(c, state, call, now)))
            if call is not None and call.active:
                calls.append(SupervisorCall(
                    call_id=call.call_id, item_code=call.item_code,
                    terminal_name=call.terminal_name, clerk=call.clerk,
                    clerk_name=call.clerk_name, started_at=call.started_at,
                    identity=self.identity.get(call.call_id, "")))
        return clerks, calls

    async def build_day(self, now: float, live_calls: Sequence[str]) -> SupervisorDay:
        start = day_start(now)
        since = datetime.fromtimestamp(start, UTC)
        first = datetime.fromtimestamp(start - (HISTORY_DAYS - 1) * 86400, UTC)
        at = datetime.fromtimestamp(now, UTC)
        v, r, s = visit_events.c, ratings.c, case_steps.c
        async with self.engine.connect() as conn:
            today = [_visit(row) for row in (await conn.execute(
                select(v.kind, v.at, v.ticket_id, v.item_code, v.wait_s, v.handle_s)
                .where(v.at >= since, v.at <= at))).mappings()]
            history = [_visit(row) for row in (await conn.execute(
                select(v.kind, v.at, v.ticket_id, v.item_code, v.wait_s, v.handle_s)
                .where(v.at >= first, v.at < since,
                       v.kind.in_([VisitKind.ANSWERED.value, VisitKind.ABANDONED.value,
                                   VisitKind.LEFT.value])))).mappings()]
            rated = [RatingEvent(row["at"].timestamp(), Rating(row["rating"]))
                     for row in (await conn.execute(
                         select(r.at, r.rating).where(r.at >= since))).mappings()]
            steps = [StepTiming(row["level"], row["started_at"].timestamp(),
                                row["due_at"].timestamp(),
                                row["ended_at"].timestamp() if row["ended_at"] else None)
                     for row in (await conn.execute(
                         select(s.level, s.started_at, s.due_at, s.ended_at)
                         .where(s.ended_at.is_(None) | (s.ended_at >= first)))).mappings()]
            open_followups = int((await conn.execute(
                select(func.count()).select_from(followups)
                .where(followups.c.closed_at.is_(None)))).scalar_one())
            if live_calls:
                self.identity = await _identity_of(conn, live_calls)
        days = [datetime.fromtimestamp(start - (HISTORY_DAYS - 1 - i) * 86400, SERVICE_TZ)
                .strftime("%m-%d") for i in range(HISTORY_DAYS)]
        return SupervisorDay(
            calls=call_figures(today, start, now, ANSWER_WITHIN_S),
            satisfaction=satisfaction(rated), answer_within_s=ANSWER_WITHIN_S,
            hours=buckets(today, start, 3600, 24), days=days,
            by_day=buckets(history + today, start - (HISTORY_DAYS - 1) * 86400, 86400,
                           HISTORY_DAYS),
            steps=step_figures(steps, now), open_followups=open_followups)

    async def sections(self, now: float, with_day: bool) -> dict[str, Any]:
        items = await self.items(now)
        clerks, calls = await self.people(now)
        if with_day or self.day is None:
            self.day_stale = False
            self.day = await self.build_day(now, [c.call_id for c in calls])
            self.day_at = now
        return {"items": items, "clerks": clerks, "calls": calls, "day": self.day}

    # --- pushing --------------------------------------------------------------------

    def visits_copied(self, count: int) -> None:
        self.day_stale = self.day_stale or count > 0

    def day_due(self, now: float) -> bool:
        age = now - self.day_at
        return age >= DAY_REFRESH_S or (self.day_stale and age >= DAY_STALE_S)

    async def step(self) -> None:
        if not self.pages:
            self.sent.clear()
            return
        started = time.process_time()
        now = self.clock()
        parts = await self.sections(now, self.day_due(now))
        changed = {}
        for name, value in parts.items():
            raw = _json(value)
            if self.sent.get(name) != raw:
                changed[name] = value
                self.sent[name] = raw
        self.busy_s += time.process_time() - started
        if changed:
            update = SupervisorUpdate(at=now, **changed).model_dump_json(exclude_none=True)
            await asyncio.gather(*(self._send(ws, update) for ws in list(self.pages)))

    async def snapshot(self) -> str:
        now = self.clock()
        parts = await self.sections(now, False)
        return SupervisorSnapshot(at=now, **parts).model_dump_json()

    async def _send(self, ws: web.WebSocketResponse, raw: str) -> None:
        try:
            await asyncio.wait_for(ws.send_str(raw), SEND_TIMEOUT_S)
        except (TimeoutError, ConnectionError) as exc:
            log.info("supervisor page dropped", extra={"error": repr(exc)})
            self.pages.discard(ws)
            await ws.close(code=1013, message=b"too slow")


def _json(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(v.model_dump_json() for v in value) + "]"
    return str(value.model_dump_json())


def _visit(row: Any) -> VisitEvent:
    return VisitEvent(kind=VisitKind(row["kind"]), at=row["at"].timestamp(),
                      ticket_id=row["ticket_id"], item_code=row["item_code"],
                      wait_s=row["wait_s"], handle_s=row["handle_s"])


async def _identity_of(conn: Any, call_ids: Sequence[str]) -> dict[str, str]:
    e = call_events.c
    rows = (await conn.execute(
        select(e.call_id, e.detail).where(e.call_id.in_(list(call_ids)),
                                          e.kind == CallEventKind.IDENTITY_CHECK.value)
        .order_by(e.at))).mappings()
    return {row["call_id"]: str((row["detail"] or {}).get("verdict", "")) for row in rows}


VIEW = web.AppKey("supervisor_view", SupervisorView)


async def ws_supervisor(request: web.Request) -> web.WebSocketResponse:
    session = await current_session(request)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "not_logged_in", "请先登录")
    if session.role not in WATCHERS:
        raise http_error(web.HTTPForbidden, "forbidden", "只有管理员和值班长可以查看")
    view = request.app[VIEW]
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
    await ws.prepare(request)
    sid = session_id(request) or ""
    request.app[SOCKETS].add(sid, ws)  # closed when the session ends
    try:
        await ws.send_str(await view.snapshot())
        view.pages.add(ws)
        async for frame in ws:  # the page only listens; anything it sends is ignored
            if frame.type == WSMsgType.ERROR:
                log.info("supervisor websocket error", extra={"error": repr(ws.exception())})
    finally:
        view.pages.discard(ws)
        request.app[SOCKETS].remove(sid, ws)
    return ws


async def refresh_calendar(app: web.Application) -> None:
    """Holidays entered on the admin page count in the due times this node computes."""
    app[CASES].calendar = await work_calendar.load_calendar(app[ENGINE], app[SETTINGS])


async def running(app: web.Application) -> AsyncIterator[None]:
    """The view and its loop (after the node exists: append after the resources)."""
    node = app[NODE]
    view = app[VIEW] = SupervisorView(node, app[ENGINE], app[CLOCK])
    copier = VisitCopier(app[REDIS], app[ENGINE], app[SETTINGS].node_id, view.visits_copied)
    await copier.ensure_group()
    node.loops.every("supervisor", PUSH_INTERVAL_S, view.step)
    node.loops.every("visit-copier", COPY_INTERVAL_S, copier.run_step)
    # An item edited on the admin page (on any node) reaches every node's catalogue.
    node.loops.every("catalogue-reload", CATALOGUE_RELOAD_S,
                     lambda: node.catalogue.load(app[ENGINE]))
    node.loops.every("calendar-reload", work_calendar.REFRESH_S, lambda: refresh_calendar(app))
    yield


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ws/supervisor", ws_supervisor)
    app.cleanup_ctx.append(running)
