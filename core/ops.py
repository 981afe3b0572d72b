"""Operators' endpoints (`/metrics`, the worker's `/health`): a bearer `OPS_TOKEN`, or,
when none is set (`make run`, tests), a caller on the loopback address only."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from core.settings import Settings


def ops_allowed(request: web.Request, settings: Settings) -> bool:
    if settings.ops_token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.ops_token}".encode())
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False
