"""Supervisor figures: queue length per item, longest wait, clerks per state, outcomes.

Read from Redis at request time, so every signaling node reports the same numbers.
Served as JSON (`/api/supervisor/figures`) and in Prometheus text format (`/metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from core.ops import ops_allowed
from core.replies import http_error
from signaling.appkeys import SETTINGS
from signaling.auth import require_session
from signaling.node import NODE, SignalingNode

COUNTERS = ("joined", "offers_made", "offers_accepted", "offers_timed_out", "offers_rejected",
            "offers_withdrawn", "abandoned", "left", "calls_ended")


class ItemFigures(BaseModel):
    item_code: str
    item_name: str
    waiting: int
    longest_wait_s: int


class Figures(BaseModel):
    items: list[ItemFigures]
    clerks_by_status: dict[str, int]
    clerks_by_state: dict[str, int]
    counters: dict[str, int]
    connections_here: int


async def collect(node: SignalingNode, now: float) -> Figures:
    items: list[ItemFigures] = []
    for code, item in sorted(node.catalogue.items.items()):
        head = [ticket_id for ticket_id, _ in await node.store.queue_view(code)]
        longest = 0
        if head:
            tickets = [await node.store.ticket(t) for t in head[:50]]
            oldest = min((t.enqueued_at for t in tickets if t is not None), default=now)
            longest = int(now - oldest)
        items.append(ItemFigures(item_code=code, item_name=item.name, waiting=len(head),
                                 longest_wait_s=longest))
    by_status = {s: 0 for s in ("offline", "ready", "not_ready")}
    by_state = {s: 0 for s in ("idle", "offered", "in_call", "wrap_up")}
    for c in await node.store.all_clerks():
        by_status[c.status] = by_status.get(c.status, 0) + 1
        if c.status != "offline":
            by_state[c.state] = by_state.get(c.state, 0) + 1
    counters = await node.store.counters()
    return Figures(items=items, clerks_by_status=by_status, clerks_by_state=by_state,
                   counters={k: counters.get(k, 0) for k in COUNTERS},
                   connections_here=len(node.delivery.conns))


class _Snapshot(Collector):
    def __init__(self, figures: Figures) -> None:
        self.f = figures

    def collect(self) -> Iterator[Metric]:
        q = GaugeMetricFamily("vw_queue_length", "Applicants waiting", labels=["item"])
        w = GaugeMetricFamily("vw_queue_longest_wait_seconds", "Longest current wait",
                              labels=["item"])
        for it in self.f.items:
            q.add_metric([it.item_code], it.waiting)
            w.add_metric([it.item_code], it.longest_wait_s)
        yield q
        yield w
        s = GaugeMetricFamily("vw_clerks_status", "Clerks by status", labels=["status"])
        for k, v in self.f.clerks_by_status.items():
            s.add_metric([k], v)
        yield s
        st = GaugeMetricFamily("vw_clerks_state", "Online clerks by state", labels=["state"])
        for k, v in self.f.clerks_by_state.items():
            st.add_metric([k], v)
        yield st
        for k, v in self.f.counters.items():
            c = CounterMetricFamily(f"vw_{k}", f"Total {k.replace('_', ' ')}")
            c.add_metric([], v)
            yield c
        yield GaugeMetricFamily("vw_ws_connections", "Websockets on this node",
                                value=self.f.connections_here)


async def figures_json(request: web.Request) -> web.Response:
    await require_session(request, "admin", "qa")
    node = request.app[NODE]
    return web.json_response((await collect(node, node.clock())).model_dump())


async def metrics(request: web.Request) -> web.Response:
    if not ops_allowed(request, request.app[SETTINGS]):
        raise http_error(web.HTTPUnauthorized, "ops_token_required", "需要运维令牌")
    node = request.app[NODE]
    registry = CollectorRegistry()
    registry.register(_Snapshot(await collect(node, node.clock())))
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/supervisor/figures", figures_json)
    app.router.add_get("/metrics", metrics)
