"""Terminals that reload, and terminals whose signaling node dies (kill -9).

A reload onto the same node never loses the new connection's position updates; the
terminals of a dead node are abandoned after the grace unless they come back, are never
offered to a clerk while they are connected nowhere, and hear what happened if they come
back later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from sqlalchemy.dialects.postgresql import insert

from core import keys, records
from core.credentials import hash_token
from core.settings import ROOT, Settings
from signaling.app import create_app
from testkit.localstack import free_port, wait_http
from tests.signaling.peers import Peer, connect_clerk, fast, until

ITEM = "YL-CB"
CRASH = {"TERMINAL_GRACE_S": "3", "TERMINAL_PRESENCE_TTL_S": "1", "CLERK_PRESENCE_TTL_S": "1.5",
         "POSITION_REFRESH_S": "1"}
TERMINALS = [f"T-crash-{i}" for i in range(4)]


def crash_settings(settings: Settings) -> Settings:
    return replace(settings, terminal_grace_s=3.0, terminal_presence_ttl_s=1.0,
                   clerk_presence_ttl_s=1.5, position_refresh_s=1.0, offer_timeout_s=20.0)


async def test_terminals_reloading_in_a_tight_loop_keep_their_position_updates(
        settings: Settings, redis: aioredis.Redis) -> None:
    """Many terminals at once (so clean-ups and new connections interleave, as under
    load) close and reopen their socket on the same node again and again."""
    tokens = await add_terminals(settings, 20)
    srv = TestServer(create_app(fast(settings, position_refresh_s=0.5)))
    await srv.start_server()
    try:
        base = str(srv.make_url("/"))
        lost: list[str] = []

        async def reload_loop(terminal_id: str) -> None:
            term = await terminal_at(base, tokens[terminal_id])
            await term.send(type="join_queue", item_code=ITEM)
            ticket = (await term.recv("queue_status"))["ticket_id"]
            client = term.client  # the same login, as a reloading page
            for _ in range(8):
                # A reload: the page sends its close and opens the new socket at once,
                # without waiting for the server's answer to the close.
                closing = asyncio.create_task(term.ws.close())
                term = Peer(client, await client.ws_connect("/ws"))
                await closing
                await term.recv("hello")
                assert (await term.recv("queue_status"))["ticket_id"] == ticket  # snapshot
                # And then the periodic refresh keeps coming to this connection.
                try:
                    await term.recv("queue_status", timeout=2.0, ticket_id=ticket)
                except TimeoutError:
                    lost.append(terminal_id)
            await term.close()

        await asyncio.gather(*(reload_loop(tid) for tid in sorted(tokens)))
        assert lost == [], f"connections without position updates: {lost}"
    finally:
        await srv.close()


async def add_terminals(settings: Settings, count: int = len(TERMINALS)) -> dict[str, str]:
    tokens = {f"T-crash-{i}": f"crash-token-{i}" for i in range(count)}
    engine = records.make_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            for tid, token in tokens.items():
                row: dict[str, Any] = {"terminal_id": tid, "name": f"终端{tid[-1]}",
                                       "village": "江夏区测试村", "region_code": "420115",
                                       "token_hash": hash_token(token)}
                await conn.execute(insert(records.terminals).values(row).on_conflict_do_update(
                    index_elements=["terminal_id"], set_=row))
    finally:
        await engine.dispose()
    return tokens


@pytest.fixture
def doomed_node(settings: Settings) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A signaling node in its own process, for the test to kill -9."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
           "REDIS_URL": settings.redis_url, "DATABASE_URL": settings.database_url,
           "LISTEN_PORT": str(port), "NODE_ID": "node-doomed", "RUN_MODE": "local",
           "PII_KEY_FILE": str(settings.pii_key_file), **CRASH}
    proc = subprocess.Popen([sys.executable, "-m", "signaling"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, proc, "signaling")
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture
async def survivor(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(crash_settings(settings)))
    await srv.start_server()
    yield srv
    await srv.close()


async def terminal_at(base_url: str, token: str) -> Peer:
    client = ClientSession(base_url=base_url, cookie_jar=CookieJar(unsafe=True))
    resp = await client.post("/api/terminal/session", json={"token": token})
    assert resp.status == 200, await resp.text()
    peer = Peer(client, await client.ws_connect("/ws"))
    await peer.recv("hello")
    return peer


async def test_the_terminals_of_a_killed_node_are_abandoned_unless_they_come_back(
        settings: Settings, redis: aioredis.Redis, survivor: TestServer,
        doomed_node: tuple[str, subprocess.Popen[bytes]]) -> None:
    tokens = await add_terminals(settings)
    doomed_url, proc = doomed_node
    here = str(survivor.make_url("/"))
    # Two wait on the node that will die, ahead of two on the survivor.
    gone, back, stay_a, _ = TERMINALS
    peers = {tid: await terminal_at(doomed_url if tid in (gone, back) else here, tokens[tid])
             for tid in TERMINALS}
    tickets = {}
    for tid in TERMINALS:
        await peers[tid].send(type="join_queue", item_code=ITEM)
        tickets[tid] = (await peers[tid].recv("queue_status"))["ticket_id"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    for tid in (gone, back):
        await peers[tid].close()
    # One comes back within the grace, on the other node: same ticket, same place.
    peers[back] = await terminal_at(here, tokens[back])
    again = await peers[back].recv("queue_status")
    assert again["ticket_id"] == tickets[back] and again["position"] == 2
    # Connected nowhere (its presence expired), the other is offered to nobody.
    await until(lambda: _absent(redis, gone), timeout_s=5)
    clerk = await connect_clerk(survivor, "clerk1", ready=False)
    await clerk.send(type="set_status", status="ready")
    offer = await clerk.recv("offer")
    assert offer["terminal_id"] == back and offer["ticket_id"] != tickets[gone]
    # After the grace it is abandoned: the places close up for those who stay.
    moved = await peers[stay_a].recv("queue_status", position=2, timeout=8)
    assert moved["waiting_total"] == 3
    assert await redis.get(keys.terminal_ticket(gone)) is None
    # Coming back later, it is told and starts again.
    late = await terminal_at(here, tokens[gone])
    told = await late.recv("left_queue")
    assert told == {"type": "left_queue", "ticket_id": tickets[gone], "reason": "abandoned"}
    assert await late.quiet("queue_status", 0.3) == []
    assert all(m.get("ticket_id") != tickets[gone] for m in clerk.seen if m["type"] == "offer")
    for p in (late, clerk, *peers.values()):
        if p is not peers[gone]:
            await p.close()


async def _absent(redis: aioredis.Redis, terminal_id: str) -> bool:
    return not await redis.exists(keys.terminal_presence(terminal_id))

