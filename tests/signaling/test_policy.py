"""The policy table covers every route of the app, and the middleware holds to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from core.settings import Settings
from signaling.app import create_app
from signaling.policy import MESSAGES, PUBLIC, ROUTES
from testkit.demo import DEMO_PASSWORD, DEMO_TERMINALS

LOGINS = {
    "terminal": ("/api/terminal/session", {"token": DEMO_TERMINALS[0].token}),
    "clerk": ("/api/login", {"username": "clerk1", "password": DEMO_PASSWORD}),
    "reviewer": ("/api/login", {"username": "reviewer_town", "password": DEMO_PASSWORD}),
    "qa": ("/api/login", {"username": "qa1", "password": DEMO_PASSWORD}),
    "admin": ("/api/login", {"username": "admin", "password": DEMO_PASSWORD}),
    "supervisor": ("/api/login", {"username": "duty1", "password": DEMO_PASSWORD}),
}
SAMPLE = {"{case_no}": "20260101-ABCDEF01", "{certificate}": "E20260101ABCDEF0123",
          "{code}": "YL-CB", "{scan_id}": "nosuchscan", "{filename}": "common/api.js",
          "{call_id}": "nosuchcall", "{access_id}": "1", "{flag_id}": "1", "{hold_id}": "1",
          "{followup_id}": "1", "{username}": "nosuchuser", "{terminal_id}": "nosuchterminal",
          "{day}": "2026-10-01",
          "{verification_id}": "nosuchcheck", "{index}": "0"}


@pytest.fixture
async def server(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(settings))
    await srv.start_server()
    yield srv
    await srv.close()


def app_routes(server: TestServer) -> set[tuple[str, str]]:
    found = set()
    for route in server.app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        path = resource.canonical
        found.add((route.method, "/web/{filename}" if path.startswith("/web") else path))
    return found


def concrete(path: str) -> str:
    for placeholder, value in SAMPLE.items():
        path = path.replace(placeholder, value)
    return path


async def test_every_route_is_in_the_table_and_the_table_has_no_stale_route(
        server: TestServer) -> None:
    routes = app_routes(server)
    assert routes - set(ROUTES) == set(), "routes nobody decided who may call"
    assert set(ROUTES) - routes == set(), "table entries without a route"


async def test_without_a_session_only_public_routes_answer(server: TestServer) -> None:
    async with ClientSession(base_url=str(server.make_url("/"))) as anon:
        for (method, path), allowed in ROUTES.items():
            if allowed == PUBLIC or path == "/ws":
                continue
            resp = await anon.request(method, concrete(path), json={})
            assert resp.status == 401, (method, path, resp.status)
            assert (await resp.json())["error"]["code"] == "not_logged_in"


@pytest.mark.parametrize("role", sorted(LOGINS))
async def test_each_role_is_refused_every_route_not_given_to_it(server: TestServer,
                                                                 role: str) -> None:
    async with ClientSession(base_url=str(server.make_url("/")),
                             cookie_jar=CookieJar(unsafe=True)) as s:
        url, body = LOGINS[role]
        assert (await s.post(url, json=body)).status == 200
        for (method, path), allowed in ROUTES.items():
            if allowed == PUBLIC or role in allowed or path == "/api/logout":
                continue
            resp = await s.request(method, concrete(path), json={})
            assert resp.status == 403, (role, method, path, resp.status)


def test_every_client_message_has_its_senders() -> None:
    from typing import get_args

    from core.messages import ClientMessage

    union = get_args(ClientMessage)[0]
    types = {get_args(m.model_fields["type"].annotation)[0] for m in get_args(union)}
    assert types == set(MESSAGES)
    assert all(MESSAGES[t] for t in types)

