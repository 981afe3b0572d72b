"""Settings: the one place that reads the environment.

Every process builds one `Settings` from `Settings.from_env()`; tests pass their own
mapping instead of patching `os.environ`. Each field is listed in README.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from verify.document_config import DocumentThresholds
from verify.face_config import FaceMatchConfig, LivenessConfig

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


def _assignment(raw: str) -> Literal["random", "claim"]:
    if raw in ("random", "claim"):
        return "random" if raw == "random" else "claim"
    raise ValueError("expected random or claim")


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
    join_token_secret: str = "dev-join-secret-change-me"
    cookie_secure: bool = False
    # --- queue and routing ------------------------------------------------------------
    offer_timeout_s: float = 20.0
    wrapup_s: float = 30.0
    terminal_grace_s: float = 30.0
    clerk_presence_ttl_s: float = 8.0  # a dead clerk leaves routing within this + 1 s
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
    media_host: str = "127.0.0.1"  # where the media worker listens
    media_port: int = 8090
    media_public_url: str = ""  # as peers reach the worker; derived from host/port when empty
    media_worker_id: str = ""  # registry id; derived from node_id when empty
    media_capacity: int = 4  # calls one worker takes before it reports load 1.0
    media_load_threshold: float = 0.7  # signaling skips workers above this load
    media_heartbeat_s: float = 2.0
    media_worker_ttl_s: float = 6.0  # registry entry expires after this without heartbeat
    media_ice_hosts: tuple[str, ...] = ()  # host addresses the worker announces in ICE
    media_stun_urls: tuple[str, ...] = ()  # e.g. stun:stun.example.org:3478
    media_turn_urls: tuple[str, ...] = ()  # e.g. turn:turn.example.org:3478?transport=udp
    media_turn_secret: str = ""  # coturn static-auth-secret (use-auth-secret)
    media_turn_ttl_s: int = 3600
    join_token_ttl_s: float = 300.0
    media_grace_s: float = 15.0  # a participant gone longer than this ends the call
    media_record: bool = True
    media_segment_s: float = 60.0  # recording segment length
    media_fragment_s: float = 1.0  # MP4 fragment (keyframe interval) length
    media_record_fps: int = 15
    # --- verification -----------------------------------------------------------------
    # VERIFY-SETTINGS (the identity and documents issues add their fields here)
    document: DocumentThresholds = field(default_factory=DocumentThresholds)  # DOC_*
    face_match: FaceMatchConfig = field(default_factory=FaceMatchConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    # --- approval ---------------------------------------------------------------------
    # APPROVAL-SETTINGS (the approval issue adds its fields here)
    eseal_key_dir: Path = ROOT / "var" / "eseal"  # Ed25519 keys, one <key id>.pem each
    eseal_key_id: str = "seal-1"  # the key that signs new certificates (rotation)
    eseal_issuer: str = "江夏区行政审批局"
    approval_holidays: tuple[str, ...] = ()  # ISO dates that are not working days
    approval_makeup_days: tuple[str, ...] = ()  # weekend dates worked instead (调休)
    reviewer_online_ttl_s: float = 30.0
    approval_assignment: Literal["random", "claim"] = "random"
    approval_reclaim_idle_s: float = 600.0  # a task held this long returns to the pool
    approval_max_deliveries: int = 5  # then the task goes to the dead-letter list
    approval_sweep_s: float = 5.0  # reclaim, re-enqueue, deadlines
    certificate_font: Path = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    # "group=username,..": who is told when a step of the group is overdue (督办).
    approval_group_leads: tuple[str, ...] = ()
    approval_archive_after_days: float = 30.0  # finished cases are archived after this

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def media_url(self) -> str:
        return self.media_public_url or f"http://{self.media_host}:{self.media_port}"

    @property
    def media_id(self) -> str:
        return self.media_worker_id or f"media-{self.node_id}"

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
            media_host=_get(e, "MEDIA_LISTEN_HOST", d.media_host, str),
            media_port=_get(e, "MEDIA_LISTEN_PORT", d.media_port, int),
            media_public_url=_get(e, "MEDIA_PUBLIC_URL", d.media_public_url, str),
            media_worker_id=_get(e, "MEDIA_WORKER_ID", d.media_worker_id, str),
            media_capacity=_get(e, "MEDIA_CAPACITY", d.media_capacity, int),
            media_load_threshold=_get(
                e, "MEDIA_LOAD_THRESHOLD", d.media_load_threshold, float
            ),
            media_heartbeat_s=_get(e, "MEDIA_HEARTBEAT_S", d.media_heartbeat_s, float),
            media_worker_ttl_s=_get(e, "MEDIA_WORKER_TTL_S", d.media_worker_ttl_s, float),
            media_ice_hosts=_get(e, "MEDIA_ICE_HOSTS", d.media_ice_hosts, _csv),
            media_stun_urls=_get(e, "MEDIA_STUN_URLS", d.media_stun_urls, _csv),
            media_turn_urls=_get(e, "MEDIA_TURN_URLS", d.media_turn_urls, _csv),
            media_turn_secret=_get(e, "MEDIA_TURN_SECRET", d.media_turn_secret, str),
            media_turn_ttl_s=_get(e, "MEDIA_TURN_TTL_S", d.media_turn_ttl_s, int),
            join_token_ttl_s=_get(e, "JOIN_TOKEN_TTL_S", d.join_token_ttl_s, float),
            media_grace_s=_get(e, "MEDIA_GRACE_S", d.media_grace_s, float),
            media_record=_get(e, "MEDIA_RECORD", d.media_record, _bool),
            media_segment_s=_get(e, "MEDIA_SEGMENT_S", d.media_segment_s, float),
            media_fragment_s=_get(e, "MEDIA_FRAGMENT_S", d.media_fragment_s, float),
            media_record_fps=_get(e, "MEDIA_RECORD_FPS", d.media_record_fps, int),
            # VERIFY-FROM-ENV
            document=replace(
                d.document,
                max_edge_blur=_get(e, "DOC_MAX_EDGE_BLUR", d.document.max_edge_blur, float),
                max_glare_fraction=_get(
                    e, "DOC_MAX_GLARE_FRACTION", d.document.max_glare_fraction, float
                ),
                min_brightness=_get(e, "DOC_MIN_BRIGHTNESS", d.document.min_brightness, float),
                max_brightness=_get(e, "DOC_MAX_BRIGHTNESS", d.document.max_brightness, float),
                min_area_fraction=_get(
                    e, "DOC_MIN_AREA_FRACTION", d.document.min_area_fraction, float
                ),
                max_corner_angle_deg=_get(
                    e, "DOC_MAX_CORNER_ANGLE_DEG", d.document.max_corner_angle_deg, float
                ),
                max_side_ratio=_get(e, "DOC_MAX_SIDE_RATIO", d.document.max_side_ratio, float),
            ),
            face_match=replace(
                d.face_match,
                pass_below=_get(e, "FACE_PASS_BELOW", d.face_match.pass_below, float),
                fail_above=_get(e, "FACE_FAIL_ABOVE", d.face_match.fail_above, float),
                small_portrait_fail_above=_get(
                    e, "FACE_SMALL_PORTRAIT_FAIL_ABOVE",
                    d.face_match.small_portrait_fail_above, float),
                best_k=_get(e, "FACE_BEST_K", d.face_match.best_k, int),
                min_face_px=_get(e, "FACE_MIN_PX", d.face_match.min_face_px, int),
            ),
            liveness=replace(
                d.liveness,
                timeout_s=_get(e, "LIVENESS_TIMEOUT_S", d.liveness.timeout_s, float),
                turn_ratio=_get(e, "LIVENESS_TURN_RATIO", d.liveness.turn_ratio, float),
                nod_ratio=_get(e, "LIVENESS_NOD_RATIO", d.liveness.nod_ratio, float),
            ),
            # APPROVAL-FROM-ENV
            eseal_key_dir=_get(e, "ESEAL_KEY_DIR", d.eseal_key_dir, Path),
            eseal_key_id=_get(e, "ESEAL_KEY_ID", d.eseal_key_id, str),
            eseal_issuer=_get(e, "ESEAL_ISSUER", d.eseal_issuer, str),
            approval_holidays=_get(e, "APPROVAL_HOLIDAYS", d.approval_holidays, _csv),
            approval_makeup_days=_get(e, "APPROVAL_MAKEUP_DAYS", d.approval_makeup_days, _csv),
            reviewer_online_ttl_s=_get(
                e, "REVIEWER_ONLINE_TTL_S", d.reviewer_online_ttl_s, float),
            approval_assignment=_get(
                e, "APPROVAL_ASSIGNMENT", d.approval_assignment, _assignment),
            approval_reclaim_idle_s=_get(
                e, "APPROVAL_RECLAIM_IDLE_S", d.approval_reclaim_idle_s, float),
            approval_max_deliveries=_get(
                e, "APPROVAL_MAX_DELIVERIES", d.approval_max_deliveries, int),
            approval_sweep_s=_get(e, "APPROVAL_SWEEP_S", d.approval_sweep_s, float),
            certificate_font=_get(e, "CERTIFICATE_FONT", d.certificate_font, Path),
            approval_group_leads=_get(
                e, "APPROVAL_GROUP_LEADS", d.approval_group_leads, _csv),
            approval_archive_after_days=_get(
                e, "APPROVAL_ARCHIVE_AFTER_DAYS", d.approval_archive_after_days, float),
        )
