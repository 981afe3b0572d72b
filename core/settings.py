"""Settings: the one place that reads the environment.

Every process builds one `Settings` from `Settings.from_env()`; tests pass their own
mapping instead of patching `os.environ`. Each field is listed in README.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _get(env: Mapping[str, str], name: str, default: T, cast: Callable[[str], T]) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc


def _bool(raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _strategy(raw: str) -> Literal["longest_idle", "random"]:
    if raw == "longest_idle":
        return "longest_idle"
    if raw == "random":
        return "random"
    raise ValueError("expected longest_idle or random")


@dataclass(frozen=True)
class Settings:
    # --- where things are -------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/vwindow"
    host: str = "127.0.0.1"
    port: int = 8080
    storage_root: Path = ROOT / "var" / "storage"
    node_id: str = field(default_factory=lambda: "node-" + secrets.token_hex(3))
    public_url: str = ""  # as browsers reach signaling; derived from host/port when empty
    # --- secrets ----------------------------------------------------------------------
    session_secret: str = "dev-session-secret-change-me"
    join_token_secret: str = "dev-join-secret-change-me"
    cookie_secure: bool = False
    # --- queue and routing ------------------------------------------------------------
    offer_timeout_s: float = 20.0
    wrapup_s: float = 30.0
    terminal_grace_s: float = 30.0
    clerk_presence_ttl_s: float = 10.0
    position_refresh_s: float = 10.0
    routing_strategy: Literal["longest_idle", "random"] = "longest_idle"
    default_handle_time_s: float = 300.0
    # --- edge limits ------------------------------------------------------------------
    ws_max_message_bytes: int = 64 * 1024
    ws_rate_per_s: float = 20.0
    ws_rate_burst: int = 40
    session_ttl_s: int = 12 * 3600
    # --- media (calls) ----------------------------------------------------------------
    # MEDIA-SETTINGS (the calls issue adds its fields here)
    # --- verification -----------------------------------------------------------------
    # VERIFY-SETTINGS (the identity and documents issues add their fields here)
    # --- approval ---------------------------------------------------------------------
    # APPROVAL-SETTINGS (the approval issue adds its fields here)

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            redis_url=_get(e, "REDIS_URL", d.redis_url, str),
            database_url=_get(e, "DATABASE_URL", d.database_url, str),
            host=_get(e, "LISTEN_HOST", d.host, str),
            port=_get(e, "LISTEN_PORT", d.port, int),
            storage_root=_get(e, "STORAGE_ROOT", d.storage_root, Path),
            node_id=_get(e, "NODE_ID", d.node_id, str),
            public_url=_get(e, "PUBLIC_URL", d.public_url, str),
            session_secret=_get(e, "SESSION_SECRET", d.session_secret, str),
            join_token_secret=_get(e, "JOIN_TOKEN_SECRET", d.join_token_secret, str),
            cookie_secure=_get(e, "COOKIE_SECURE", d.cookie_secure, _bool),
            offer_timeout_s=_get(e, "OFFER_TIMEOUT_S", d.offer_timeout_s, float),
            wrapup_s=_get(e, "WRAPUP_S", d.wrapup_s, float),
            terminal_grace_s=_get(e, "TERMINAL_GRACE_S", d.terminal_grace_s, float),
            clerk_presence_ttl_s=_get(e, "CLERK_PRESENCE_TTL_S", d.clerk_presence_ttl_s, float),
            position_refresh_s=_get(e, "POSITION_REFRESH_S", d.position_refresh_s, float),
            routing_strategy=_get(e, "ROUTING_STRATEGY", d.routing_strategy, _strategy),
            default_handle_time_s=_get(
                e, "DEFAULT_HANDLE_TIME_S", d.default_handle_time_s, float
            ),
            ws_max_message_bytes=_get(e, "WS_MAX_MESSAGE_BYTES", d.ws_max_message_bytes, int),
            ws_rate_per_s=_get(e, "WS_RATE_PER_S", d.ws_rate_per_s, float),
            ws_rate_burst=_get(e, "WS_RATE_BURST", d.ws_rate_burst, int),
            session_ttl_s=_get(e, "SESSION_TTL_S", d.session_ttl_s, int),
            # MEDIA-FROM-ENV
            # VERIFY-FROM-ENV
            # APPROVAL-FROM-ENV
        )
