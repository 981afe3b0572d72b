"""Property-based fuzzing of every WebSocket message and every REST body (issue 16, Proof):
frames and bodies drawn from the models' JSON schemas, mangled, or random bytes; the
server never fails (no `internal`, no 5xx), never hangs, always answers with a coded
error, and another client's connection goes on as if nothing happened.

The app runs in a loop of its own thread for the whole module, so hypothesis drives it
from an ordinary test function, one batch of frames per example.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar, get_args

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, CookieJar, WSMsgType
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from approval.store import CaseSubmission
from core.messages import ClientMessage
from core.settings import Settings
from signaling.app import create_app
from signaling.auth import EnrolRequest, LoginRequest, TerminalLoginRequest
from signaling.cases_api import MaterialsArrived
from signaling.certificates_api import RevokeRequest
from signaling.kiosk_certificates import SlipProof, StaffUnlock
from signaling.policy import MESSAGES
from signaling.reviewer_api import DecisionRequest
from testkit.demo import DEMO_PASSWORD, DEMO_TERMINALS
from tests.conftest import Stack
from tests.security.model_strategies import json_values, model_json

T = TypeVar("T")
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REPLY_S = 10.0  # every frame is answered well within this, or the server hangs
MODELS: list[type[BaseModel]] = list(get_args(get_args(ClientMessage)[0]))

def _model_frames(model: type[BaseModel]) -> st.SearchStrategy[str]:
    """Frames shaped by the model, and the same with one field mangled."""
    shaped = model_json(model)
    mangled = st.tuples(shaped, st.text(max_size=12), json_values).map(
        lambda t: {**t[0], t[1] or "type": t[2]} if isinstance(t[0], dict) else t[0])
    return st.one_of(shaped, mangled).map(json.dumps)


ws_frames = st.one_of(
    *[_model_frames(m) for m in MODELS],
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)


class Loop:
    """An event loop in a thread: the app and its clients live there for the module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Rig:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: TestServer | None = None
        self.clients: dict[str, ClientSession] = {}
        self.sockets: dict[str, ClientWebSocketResponse] = {}

    async def start(self) -> None:
        self.server = TestServer(create_app(self.settings))
        await self.server.start_server()
        base = str(self.server.make_url("/"))
        logins = {"terminal": ("/api/terminal/session", {"token": DEMO_TERMINALS[1].token}),
                  "clerk": ("/api/login", {"username": "clerk2", "password": DEMO_PASSWORD}),
                  "reviewer": ("/api/login", {"username": "reviewer_village",
                                              "password": DEMO_PASSWORD}),
                  "admin": ("/api/login", {"username": "admin", "password": DEMO_PASSWORD}),
                  "observer": ("/api/terminal/session", {"token": DEMO_TERMINALS[2].token})}
        for role, (url, body) in logins.items():
            client = ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True))
            assert (await client.post(url, json=body)).status == 200
            self.clients[role] = client
            if role != "admin":
                self.sockets[role] = await client.ws_connect("/ws")
                await self.exchange(role, json.dumps({"type": "ping"}))  # past the hello
        self.clients["anonymous"] = ClientSession(base_url=base)

    async def stop(self) -> None:
        for ws in self.sockets.values():
            await ws.close()
        for c in self.clients.values():
            await c.close()
        if self.server is not None:
            await self.server.close()

    async def exchange(self, role: str, frame: str | bytes) -> list[dict[str, Any]]:
        """Send one frame, then a ping; everything the server said before the pong."""
        ws = self.sockets[role]
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        await ws.send_str(json.dumps({"type": "ping"}))
        said: list[dict[str, Any]] = []
        async with asyncio.timeout(REPLY_S):
            while True:
                msg = await ws.receive()
                assert msg.type == WSMsgType.TEXT, f"connection lost: {msg}"
                data: dict[str, Any] = json.loads(msg.data)
                if data["type"] == "pong":
                    return said
                said.append(data)


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Loop, Rig]]:
    base = Settings.from_env({})
    s = replace(base, redis_url=stack.redis.url, database_url=stack.postgres.url, port=0,
                run_mode="local", pii_key_file=stack.folder / "pii.key",
                storage_root=tmp_path_factory.mktemp("fuzz-storage"),
                eseal_key_dir=tmp_path_factory.mktemp("fuzz-eseal"),
                ws_rate_per_s=10_000.0, ws_rate_burst=10_000)
    loop = Loop()
    r = Rig(s)
    loop.run(r.start())
    try:
        yield loop, r
    finally:
        loop.run(r.stop())
        loop.stop()


def _role_for(frame: str | bytes) -> str:
    """Send each message as a role allowed to send it (others get forbidden_type anyway)."""
    try:
        kind = json.loads(frame).get("type") if isinstance(frame, str) else None
    except (ValueError, AttributeError):
        kind = None
    allowed = MESSAGES.get(str(kind), frozenset())
    return next((r for r in ("terminal", "clerk", "reviewer") if r in allowed), "clerk")


@FUZZ
@given(st.lists(ws_frames, min_size=1, max_size=8))
def test_any_websocket_frame_gets_a_coded_answer_and_breaks_nothing(
        rig: tuple[Loop, Rig], frames: list[str | bytes]) -> None:
    loop, r = rig
    for frame in frames:
        said = loop.run(r.exchange(_role_for(frame), frame))
        for msg in said:
            if msg["type"] == "error":
                assert msg["code"] and msg["message"], msg
                assert msg["code"] != "internal", (frame, msg)
    # Another client's connection goes on untouched.
    assert loop.run(r.exchange("observer", json.dumps({"type": "ping", "id": "still"}))) == []


# (method, path, model, who posts it)
BODIES: list[tuple[str, type[BaseModel], str]] = [
    ("/api/login", LoginRequest, "anonymous"),
    ("/api/terminal/session", TerminalLoginRequest, "anonymous"),
    ("/api/terminal/enrol", EnrolRequest, "anonymous"),
    ("/api/cases", CaseSubmission, "clerk"),
    ("/api/cases/20260101-ABCDEF01/materials", MaterialsArrived, "clerk"),
    ("/api/cases/20260101-ABCDEF01/resubmit", MaterialsArrived, "clerk"),
    ("/api/reviewer/decide", DecisionRequest, "reviewer"),
    ("/api/reviewer/claim", MaterialsArrived, "reviewer"),
    ("/api/certificates/E20260101ABCDEF0123/revoke", RevokeRequest, "admin"),
    ("/api/certificates/E20260101ABCDEF0123/printed", RevokeRequest, "terminal"),
    ("/api/terminal/unlock", StaffUnlock, "terminal"),
    ("/api/terminal/claim", SlipProof, "terminal"),
    ("/api/logout", MaterialsArrived, "anonymous"),
]


def _bodies(model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    shaped = model_json(model).map(lambda v: json.dumps(v).encode())
    return st.one_of(shaped, json_values.map(lambda v: json.dumps(v).encode()),
                     st.binary(max_size=300))


rest_calls = st.sampled_from(range(len(BODIES))).flatmap(
    lambda i: st.tuples(st.just(i), _bodies(BODIES[i][1])))


@FUZZ
@given(st.lists(rest_calls, min_size=1, max_size=6))
def test_any_rest_body_gets_a_coded_answer_never_a_failure(
        rig: tuple[Loop, Rig], calls: list[tuple[int, bytes]]) -> None:
    loop, r = rig

    async def post(path: str, who: str, body: bytes) -> tuple[int, Any]:
        resp = await r.clients[who].post(path, data=body,
                                         headers={"Content-Type": "application/json"})
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else text

    for i, body in calls:
        path, _, who = BODIES[i]
        status, answer = loop.run(post(path, who, body))
        assert status < 500, (path, body, status, answer)
        if status >= 400:
            assert answer["error"]["code"] and answer["error"]["message"], answer
    assert loop.run(r.exchange("observer", json.dumps({"type": "ping"}))) == []
