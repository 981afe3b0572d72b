"""Which page origins may call a worker from the browser (join, capture, replay)."""

from __future__ import annotations

from core.settings import Settings


def allowed_origins(settings: Settings) -> frozenset[str]:
    base = settings.base_url.rstrip("/")
    return frozenset({base, base.replace("://127.0.0.1", "://localhost"),
                      base.replace("://localhost", "://127.0.0.1")})
