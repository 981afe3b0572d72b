"""Typed application state shared by the signaling handlers."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from approval.store import CaseStore
from core.clock import Clock
from core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
ENGINE = web.AppKey("engine", AsyncEngine)
CASES = web.AppKey("cases", CaseStore)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")  # the app's clock (tests pass their own)
