"""Routing's timers with the time fed in: a node around a real Redis, no sockets, no sleep.

Offers time out, a terminal past its grace is abandoned, a wrap-up ends, exactly when
`now` says so.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from core import keys
from core.messages import MediaJoin
from core.settings import Settings
from core.states import ClerkActivity, ClerkStatus, TicketState
from signaling.auth import Session
from signaling.catalogue import Catalogue
from signaling.node import SignalingNode
from signaling.placement import CallRole, CallStart
from testkit.clock import SteppedClock
from testkit.demo_catalogue import DEMO_ITEMS

START = 1_000_000.0
TERMINAL = Session(kind="terminal", who="T-1", role="terminal", display_name="童周岭村",
                   region_code="420115", village="童周岭村")
CLERK = Session(kind="staff", who="clerk1", role="clerk", display_name="张敏",
                region_code="420115", skills=[it.code for it in DEMO_ITEMS],
                jurisdictions=["42"])


class NoMedia:
    """A media side that places nothing (the tests here are about routing's timers)."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    async def start_call(self, call: CallStart) -> dict[str, MediaJoin | None]:
        return {call.terminal_id: None, call.clerk_username: None}

    async def join_for(self, call_id: str, participant_id: str, role: str) -> MediaJoin | None:
        return None

    async def stop_call(self, call_id: str, reason: str) -> None:
        self.stopped.append(call_id)

    async def call_action(self, call_id: str, action: str, actor: str,
                          body: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"code": "no_media", "message": "通话没有媒体服务"}}

    async def move_call(self, call: CallStart, participants: dict[str, CallRole],
                        dead_worker: str) -> dict[str, MediaJoin] | None:
        return None


def node_at(settings: Settings, redis: aioredis.Redis, clock: SteppedClock) -> SignalingNode:
    catalogue = Catalogue({it.code: it for it in DEMO_ITEMS})
    return SignalingNode(settings, redis, catalogue, NoMedia(), clock)


async def join(node: SignalingNode) -> None:
    """The terminal, connected (its presence alive), joins the queue."""
    await node.store.set_presence(keys.terminal_presence(TERMINAL.who), "conn-1", 60)
    await node.terminals.join_queue(TERMINAL, "conn-1", "YL-CB", False, None)


async def ready_clerk(node: SignalingNode, clock: SteppedClock) -> None:
    await node.store.upsert_clerk(CLERK.who, CLERK.display_name, CLERK.skills,
                                  CLERK.jurisdictions, CLERK.region_code, clock())
    await node.offers.go_ready(CLERK.who, "")


async def test_an_offer_times_out_at_its_time_and_not_before(
        settings: Settings, redis: aioredis.Redis) -> None:
    clock = SteppedClock(START)
    node = node_at(settings, redis, clock)
    await ready_clerk(node, clock)
    await join(node)
    clerk = await node.store.clerk(CLERK.who)
    assert clerk is not None and clerk.state == ClerkActivity.OFFERED
    await node.sweeps.once(START + settings.offer_timeout_s - 0.1)
    assert (await node.store.clerk(CLERK.who)).state == ClerkActivity.OFFERED  # type: ignore[union-attr]
    clock.advance(settings.offer_timeout_s + 0.1)
    await node.sweeps.once(clock())
    clerk = await node.store.clerk(CLERK.who)
    assert clerk is not None and (clerk.status, clerk.reason) == (ClerkStatus.NOT_READY, "未接听")
    ticket = await node.store.ticket_of_terminal(TERMINAL.who)
    assert ticket is not None and ticket.state == TicketState.WAITING  # kept its place


async def test_a_terminal_is_abandoned_only_after_its_grace(
        settings: Settings, redis: aioredis.Redis) -> None:
    clock = SteppedClock(START)
    node = node_at(settings, redis, clock)
    await join(node)
    await node.store.terminal_gone(TERMINAL.who, "conn-1", START + settings.terminal_grace_s)
    await node.sweeps.once(START + settings.terminal_grace_s - 1)
    assert await node.store.ticket_of_terminal(TERMINAL.who) is not None
    await node.sweeps.once(START + settings.terminal_grace_s + 1)
    assert await node.store.ticket_of_terminal(TERMINAL.who) is None
    assert (await node.store.counters())["abandoned"] == 1


async def test_a_terminal_back_before_its_grace_ends_keeps_its_ticket(
        settings: Settings, redis: aioredis.Redis) -> None:
    clock = SteppedClock(START)
    node = node_at(settings, redis, clock)
    await join(node)
    await node.store.terminal_gone(TERMINAL.who, "conn-1", START + settings.terminal_grace_s)
    # It came back on some node: its presence is alive again when the deadline passes.
    await node.store.set_presence(keys.terminal_presence(TERMINAL.who), "conn-2", 60)
    await node.sweeps.once(START + settings.terminal_grace_s + 1)
    assert await node.store.ticket_of_terminal(TERMINAL.who) is not None


async def test_wrap_up_ends_by_itself_at_its_time(
        settings: Settings, redis: aioredis.Redis) -> None:
    clock = SteppedClock(START)
    node = node_at(settings, redis, clock)
    await ready_clerk(node, clock)
    await join(node)
    clerk = await node.store.clerk(CLERK.who)
    assert clerk is not None
    await node.calls.accept(CLERK, clerk.offer_id)
    clerk = await node.store.clerk(CLERK.who)
    assert clerk is not None and clerk.state == ClerkActivity.IN_CALL
    await node.calls.end(clerk.call_id, "hangup", by=CLERK.who)
    await node.sweeps.once(START + settings.wrapup_s - 1)
    assert (await node.store.clerk(CLERK.who)).state == ClerkActivity.WRAP_UP  # type: ignore[union-attr]
    await node.sweeps.once(START + settings.wrapup_s + 1)
    clerk = await node.store.clerk(CLERK.who)
    assert clerk is not None and (clerk.status, clerk.state) == (ClerkStatus.READY,
                                                                 ClerkActivity.IDLE)
