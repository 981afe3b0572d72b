"""Test peers: a terminal or a clerk talking to a real signaling app over its websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, CookieJar, WSMsgType
from aiohttp.test_utils import TestServer

from core.settings import Settings
from testkit.demo import DEMO_PASSWORD, DEMO_TERMINALS

TOKENS = {t.terminal_id: t.token for t in DEMO_TERMINALS}
VILLAGE = "T-420115-001"
VILLAGE2 = "T-420115-002"
PARTNER = "T-430104-001"


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Short timers so the flows run in seconds."""
    quick = replace(settings, offer_timeout_s=1.5, terminal_grace_s=1.0, wrapup_s=1.0,
                    clerk_presence_ttl_s=1.5, position_refresh_s=1.0)
    return replace(quick, **overrides)


class Peer:
    def __init__(self, client: ClientSession, ws: ClientWebSocketResponse) -> None:
        self.client = client
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, **msg: Any) -> None:
        await self.ws.send_str(json.dumps(msg))

    async def recv(self, kind: str, timeout: float = 5.0,  # noqa: ASYNC109
                   **match: Any) -> dict[str, Any]:
        """The next message of `kind` (and matching fields), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                if frame.type != WSMsgType.TEXT:
                    raise AssertionError(f"socket closed while waiting for {kind}: {frame}")
                msg: dict[str, Any] = json.loads(frame.data)
                self.seen.append(msg)
                if msg["type"] == kind and all(msg.get(k) == v for k, v in match.items()):
                    return msg

    async def quiet(self, kind: str, seconds: float) -> list[dict[str, Any]]:
        """Messages of `kind` that arrive within `seconds` (expecting none, usually)."""
        found: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frame = await self.ws.receive()
                    if frame.type != WSMsgType.TEXT:
                        return found
                    msg = json.loads(frame.data)
                    self.seen.append(msg)
                    if msg["type"] == kind:
                        found.append(msg)
        except TimeoutError:
            return found

    async def close(self) -> None:
        await self.ws.close()
        await self.client.close()


async def until(probe: Callable[[], Awaitable[object]], timeout_s: float = 5.0,
                step_s: float = 0.02) -> None:
    """Until `probe()` gives something other than None or False (bounded)."""
    async with asyncio.timeout(timeout_s):
        # Polling is the point: the state is in Redis, with no event to wait on.
        while (await probe()) in (None, False):  # noqa: ASYNC110
            await asyncio.sleep(step_s)


def _session(server: TestServer) -> ClientSession:
    # Each peer has its own cookie jar (its own login), like a separate browser.
    return ClientSession(base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True))


async def connect_terminal(server: TestServer, terminal_id: str = VILLAGE) -> Peer:
    client = _session(server)
    resp = await client.post("/api/terminal/session", json={"token": TOKENS[terminal_id]})
    assert resp.status == 200, await resp.text()
    ws = await client.ws_connect("/ws")
    peer = Peer(client, ws)
    await peer.recv("hello")
    return peer


async def connect_clerk(server: TestServer, username: str = "clerk1", ready: bool = True) -> Peer:
    client = _session(server)
    resp = await client.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    ws = await client.ws_connect("/ws")
    peer = Peer(client, ws)
    await peer.recv("hello")
    await peer.recv("clerk_state")
    if ready:
        await peer.send(type="set_status", status="ready")
        await peer.recv("clerk_state", status="ready")
    return peer
