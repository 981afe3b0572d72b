"""Settings: the one place that reads the environment, and the one table of every setting.

Each field of `Settings` is declared with `setting(ENV_NAME, default, doc)`: its type
(from the annotation), default and meaning live there and nowhere else. `from_env` reads
exactly those names; `python -m core.settings readme` writes the README's table from the
same fields (a test keeps the two equal). Tests pass their own mapping instead of
patching `os.environ`. The thresholds of `verify/` are its own plain dataclasses; the
properties at the end fill them from these fields.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from core.signing import EvidenceKeys
from verify.document_config import DocumentThresholds
from verify.face_config import FaceMatchConfig, LivenessConfig
from verify.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent

_DOC = DocumentThresholds()
_FACE = FaceMatchConfig()
_LIVE = LivenessConfig()


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def setting(env: str, default: Any, doc: str, *, shown: str | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """One field of the settings table: environment name, default, meaning for the README
    (`shown`: how the README shows the default when the value itself would mislead)."""
    meta = {"env": env, "doc": doc, "shown": shown}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # --- where things are -------------------------------------------------------------
    redis_url: str = setting(
        "REDIS_URL", "redis://127.0.0.1:6379/0",
        "live state: queue, clerks, reservations, presence, worker registry, fan-out, "
        "approval streams", shown="`redis://127.0.0.1:6379/0` (`make run`: a private server)")
    database_url: str = setting(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/vwindow",
        "system of record", shown="`postgresql+asyncpg://postgres@127.0.0.1:5432/vwindow` "
        "(`make run`: a private cluster)")
    host: str = setting("LISTEN_HOST", "127.0.0.1", "where signaling listens (address)")
    port: int = setting("LISTEN_PORT", 8080, "where signaling listens (port)")
    public_url: str = setting(
        "PUBLIC_URL", "", "signaling as browsers reach it (links, CORS origin of the worker)",
        shown="`http://LISTEN_HOST:LISTEN_PORT`")
    tls_cert_file: str = setting(
        "TLS_CERT_FILE", "", "certificate (PEM, with its chain) signaling serves HTTPS with; "
        "empty: plain HTTP (behind nginx, or on 127.0.0.1)")
    tls_key_file: str = setting("TLS_KEY_FILE", "", "the private key of `TLS_CERT_FILE`")
    storage_root: Path = setting("STORAGE_ROOT", ROOT / "var" / "storage",
                                 "recordings and scans", shown="`var/storage`")
    node_id: str = setting("NODE_ID", None, "name of this process in logs and the registry",
                           shown="random", factory=lambda: "node-" + secrets.token_hex(3))
    # --- secrets and sessions ---------------------------------------------------------
    join_token_secret: str = setting("JOIN_TOKEN_SECRET", "dev-join-secret-change-me",
                                     "HMAC key of media join tokens",
                                     shown="dev value — **change it**")
    join_token_ttl_s: float = setting("JOIN_TOKEN_TTL_S", 300.0, "join token lifetime")
    cookie_secure: bool = setting("COOKIE_SECURE", False,
                                  "mark the session cookie Secure (behind TLS)")
    session_ttl_s: int = setting("SESSION_TTL_S", 12 * 3600, "login session lifetime")
    # --- queue and routing ------------------------------------------------------------
    offer_timeout_s: float = setting(
        "OFFER_TIMEOUT_S", 20.0, "a clerk's time to accept an offer; then the clerk goes "
        "not-ready and the applicant keeps the head of the queue")
    wrapup_s: float = setting("WRAPUP_S", 30.0,
                              "wrap-up after a call before the clerk is offered again")
    terminal_grace_s: float = setting("TERMINAL_GRACE_S", 30.0,
                                      "a disconnected terminal keeps its place this long")
    clerk_presence_ttl_s: float = setting(
        "CLERK_PRESENCE_TTL_S", 8.0, "a clerk whose connection died leaves routing within "
        "this (+1 s); presence keys are refreshed every third of it")
    terminal_presence_ttl_s: float = setting(
        "TERMINAL_PRESENCE_TTL_S", 8.0, "a terminal whose node died is offered to nobody "
        "after this; it is abandoned once gone `TERMINAL_GRACE_S` in all")
    position_refresh_s: float = setting(
        "POSITION_REFRESH_S", 10.0, "waiting terminals get their position at least this often")
    routing_strategy: Literal["longest_idle", "random"] = setting(
        "ROUTING_STRATEGY", "longest_idle",
        "`longest_idle` or `random` among eligible idle clerks")
    default_handle_time_s: float = setting(
        "DEFAULT_HANDLE_TIME_S", 300.0,
        "handle time assumed for the estimated wait before calls of an item are known")
    # --- edge limits ------------------------------------------------------------------
    ws_max_message_bytes: int = setting("WS_MAX_MESSAGE_BYTES", 64 * 1024,
                                        "larger messages get `too_large`")
    ws_rate_per_s: float = setting("WS_RATE_PER_S", 20.0,
                                   "messages per second per connection (token bucket)")
    ws_rate_burst: int = setting("WS_RATE_BURST", 40, "burst of the same token bucket")
    # --- media workers ----------------------------------------------------------------
    media_host: str = setting("MEDIA_LISTEN_HOST", "127.0.0.1",
                              "where a media worker listens (address)")
    media_port: int = setting("MEDIA_LISTEN_PORT", 8090, "where a media worker listens (port)")
    media_public_url: str = setting("MEDIA_PUBLIC_URL", "", "the worker as peers reach it",
                                    shown="`http://MEDIA_LISTEN_HOST:MEDIA_LISTEN_PORT`")
    media_tls_cert_file: str = setting(
        "MEDIA_TLS_CERT_FILE", "", "certificate a media worker serves HTTPS with (pages on "
        "https call the worker's join path on https too); empty: plain HTTP")
    media_tls_key_file: str = setting("MEDIA_TLS_KEY_FILE", "",
                                      "the private key of `MEDIA_TLS_CERT_FILE`")
    media_worker_id: str = setting("MEDIA_WORKER_ID", "", "registry id",
                                   shown="`media-NODE_ID`")
    media_capacity: int = setting("MEDIA_CAPACITY", 4, "calls at which a worker reports load 1.0")
    media_load_threshold: float = setting("MEDIA_LOAD_THRESHOLD", 0.7,
                                          "signaling skips workers above this load")
    media_heartbeat_s: float = setting("MEDIA_HEARTBEAT_S", 2.0, "worker heartbeat period")
    media_worker_ttl_s: float = setting(
        "MEDIA_WORKER_TTL_S", 6.0, "a worker without a heartbeat this long counts as dead")
    media_ice_hosts: tuple[str, ...] = setting(
        "MEDIA_ICE_HOSTS", (), "host addresses a worker announces in ICE (comma-separated)",
        shown="empty (`make run`: `127.0.0.1`)")
    media_stun_urls: tuple[str, ...] = setting(
        "MEDIA_STUN_URLS", (), "STUN servers handed to clients (comma-separated)")
    media_turn_urls: tuple[str, ...] = setting(
        "MEDIA_TURN_URLS", (), "TURN servers handed to clients (comma-separated)")
    media_turn_secret: str = setting("MEDIA_TURN_SECRET", "",
                                     "coturn `static-auth-secret` for REST credentials")
    media_turn_ttl_s: int = setting("MEDIA_TURN_TTL_S", 3600, "lifetime of TURN credentials")
    media_grace_s: float = setting("MEDIA_GRACE_S", 15.0,
                                   "a participant gone longer than this ends the call")
    media_record: bool = setting("MEDIA_RECORD", True, "record calls")
    media_segment_s: float = setting("MEDIA_SEGMENT_S", 60.0, "recording segment length")
    media_fragment_s: float = setting("MEDIA_FRAGMENT_S", 1.0,
                                      "MP4 fragment (key frame interval) length")
    media_record_fps: int = setting("MEDIA_RECORD_FPS", 15, "composite frame rate")
    media_verify_processes: int = setting(
        "MEDIA_VERIFY_PROCESSES", 2, "processes of the worker's verification pool (0: the "
        "worker runs no identity or document checks); two, so reading a card's number does "
        "not hold up the liveness samples behind it")
    media_verify_cpus: tuple[int, ...] = setting(
        "MEDIA_VERIFY_CPUS", (), "CPU numbers (comma-separated) the verification pool runs "
        "on, e.g. the cores the worker's calls do not use; empty: wherever the worker runs")
    media_verify_queue: int = setting(
        "MEDIA_VERIFY_QUEUE", 8, "verification jobs in flight at most; more are refused "
        "with a reason (the worker reports load 1.0 when full)")
    # --- verification thresholds (verify/ dataclasses, filled below) ------------------
    face_pass_below: float = setting("FACE_PASS_BELOW", _FACE.pass_below,
                                     "face distance below this: pass")
    face_fail_above: float = setting("FACE_FAIL_ABOVE", _FACE.fail_above,
                                     "face distance above this: fail; between: manual review")
    face_small_portrait_fail_above: float = setting(
        "FACE_SMALL_PORTRAIT_FAIL_ABOVE", _FACE.small_portrait_fail_above,
        f"fail threshold when the card portrait is under {_FACE.small_portrait_px} px")
    face_best_k: int = setting("FACE_BEST_K", _FACE.best_k,
                               "live frames aggregated (median) for the match")
    face_min_px: int = setting("FACE_MIN_PX", _FACE.min_face_px,
                               "smallest live face accepted (px wide)")
    liveness_timeout_s: float = setting("LIVENESS_TIMEOUT_S", _LIVE.timeout_s,
                                        "liveness challenge time limit")
    liveness_turn_ratio: float = setting("LIVENESS_TURN_RATIO", _LIVE.turn_ratio,
                                         "head movement that counts as a turn")
    liveness_nod_ratio: float = setting("LIVENESS_NOD_RATIO", _LIVE.nod_ratio,
                                        "head movement that counts as a nod")
    liveness_blink_ratio: float = setting(
        "LIVENESS_BLINK_RATIO", _LIVE.blink_ratio,
        "eyes count as closed below this share of the applicant's own openness")
    doc_max_edge_blur: float = setting(
        "DOC_MAX_EDGE_BLUR", _DOC.max_edge_blur,
        "document edge width (‰ of the frame's short side) above which it is blurred")
    doc_max_glare_fraction: float = setting(
        "DOC_MAX_GLARE_FRACTION", _DOC.max_glare_fraction,
        "glare share of the document above which it is rejected")
    doc_min_brightness: float = setting("DOC_MIN_BRIGHTNESS", _DOC.min_brightness,
                                        "document mean grey below which it is too dark")
    doc_max_brightness: float = setting("DOC_MAX_BRIGHTNESS", _DOC.max_brightness,
                                        "document mean grey above which it is too bright")
    doc_min_area_fraction: float = setting(
        "DOC_MIN_AREA_FRACTION", _DOC.min_area_fraction,
        "document share of the frame below which it is too small")
    doc_max_corner_angle_deg: float = setting(
        "DOC_MAX_CORNER_ANGLE_DEG", _DOC.max_corner_angle_deg,
        "largest corner deviation from 90° before the page counts as skewed")
    doc_max_side_ratio: float = setting(
        "DOC_MAX_SIDE_RATIO", _DOC.max_side_ratio,
        "largest ratio of opposite sides before the page counts as tilted")
    # --- approval ---------------------------------------------------------------------
    eseal_key_dir: Path = setting("ESEAL_KEY_DIR", ROOT / "var" / "eseal",
                                  "Ed25519 seal keys, one `<key id>.pem` each",
                                  shown="`var/eseal`")
    eseal_key_id: str = setting("ESEAL_KEY_ID", "seal-1",
                                "the key that signs new certificates (rotation)")
    eseal_issuer: str = setting("ESEAL_ISSUER", "江夏区行政审批局", "the certificates' issuer")
    certificate_font: Path = setting(
        "CERTIFICATE_FONT", Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        "font of certificates and the seal", shown="Noto Sans CJK")
    approval_holidays: tuple[str, ...] = setting(
        "APPROVAL_HOLIDAYS", (), "ISO dates that are not working days (comma-separated)")
    approval_makeup_days: tuple[str, ...] = setting(
        "APPROVAL_MAKEUP_DAYS", (), "weekend dates worked instead (调休, comma-separated)")
    approval_assignment: Literal["random", "claim"] = setting(
        "APPROVAL_ASSIGNMENT", "random",
        "`random` (办件随机分配 among online reviewers) or `claim`")
    reviewer_online_ttl_s: float = setting(
        "REVIEWER_ONLINE_TTL_S", 30.0,
        "a reviewer counts as online this long after the last request")
    approval_reclaim_idle_s: float = setting(
        "APPROVAL_RECLAIM_IDLE_S", 600.0, "work held this long by a departed reviewer returns")
    approval_max_deliveries: int = setting(
        "APPROVAL_MAX_DELIVERIES", 5, "deliveries of a task before the dead-letter list")
    approval_sweep_s: float = setting("APPROVAL_SWEEP_S", 5.0,
                                      "approval sweep period (reclaim, re-enqueue, deadlines)")
    approval_group_leads: tuple[str, ...] = setting(
        "APPROVAL_GROUP_LEADS", (), "`group=username,...`: who is told of overdue steps (督办)")
    approval_archive_after_days: float = setting(
        "APPROVAL_ARCHIVE_AFTER_DAYS", 30.0, "finished cases are archived after this")
    # --- QA and evidence ----------------------------------------------------------------
    evidence_key_dir: Path = setting(
        "EVIDENCE_KEY_DIR", ROOT / "var" / "evidence",
        "Ed25519 evidence keys (recording seals, audit checkpoints, exports): `<key id>.pem` "
        "and `<key id>.pub.pem`", shown="`var/evidence`")
    evidence_key_id: str = setting("EVIDENCE_KEY_ID", "evidence-1",
                                   "the key that signs new evidence (rotation)")
    audit_checkpoint_s: float = setting(
        "AUDIT_CHECKPOINT_S", 3600.0,
        "the approval worker signs a checkpoint of the audit chain this often")
    qa_replay_ticket_ttl_s: float = setting(
        "QA_REPLAY_TICKET_TTL_S", 1800.0, "lifetime of a replay ticket (one viewing)")
    qa_replay_max_viewers: int = setting(
        "QA_REPLAY_MAX_VIEWERS", 8, "replays one media worker renders at once; more are "
        "refused with a reason")
    qa_replay_lead_s: float = setting(
        "QA_REPLAY_LEAD_S", 6.0, "a replay is rendered at most this far ahead of real time")
    qa_score_items: tuple[str, ...] = setting(
        "QA_SCORE_ITEMS", ("文明用语", "身份核验", "一次性告知", "材料审核", "办结时限"),
        "items of the evaluation score sheet, 0–5 points each (comma-separated)",
        shown="`文明用语,身份核验,一次性告知,材料审核,办结时限`")
    qa_flag_categories: tuple[str, ...] = setting(
        "QA_FLAG_CATEGORIES", ("服务态度", "身份核验", "告知不全", "材料问题", "办理超时", "其他"),
        "categories of a 问题件 (comma-separated)",
        shown="`服务态度,身份核验,告知不全,材料问题,办理超时,其他`")
    retention_recording_days: float = setting(
        "RETENTION_RECORDING_DAYS", 30.0, "recordings are deleted this long after the call")
    retention_scan_days: float = setting(
        "RETENTION_SCAN_DAYS", 90.0, "scans (materials) are deleted this long after capture")
    retention_verification_days: float = setting(
        "RETENTION_VERIFICATION_DAYS", 90.0,
        "verification images are deleted this long after the call")
    retention_audit_days: float = setting(
        "RETENTION_AUDIT_DAYS", 180.0, "the audit log and the QA access log are kept at "
        "least this long (never less than 180); the retention job deletes neither")
    retention_interval_s: float = setting(
        "RETENTION_INTERVAL_S", 86400.0, "the approval worker runs the retention job this "
        "often (daily)")

    # --- security (docs/security.md) --------------------------------------------------
    run_mode: Literal["production", "local"] = setting(
        "RUN_MODE", "production", "`local` only for `make run` and the test stacks (default "
        "secrets, demo data, the kiosk's `?token=` URL); `production` refuses to start with a "
        "default or short secret")
    ops_token: str = setting("OPS_TOKEN", "", "bearer token of `/metrics` and the worker's "
                             "`/health`; empty: loopback callers only (required in production)")
    pii_key_file: Path = setting(
        "PII_KEY_FILE", ROOT / "var" / "pii.key", "keys of personal data at rest (AES-GCM) and "
        "of its search hash (`python -m signaling.admin new-pii-key`)", shown="`var/pii.key`")
    eseal_passphrase: str = setting("ESEAL_PASSPHRASE", "", "passphrase of the e-seal private "
                                    "keys (required in production)")
    trusted_proxies: tuple[str, ...] = setting(
        "TRUSTED_PROXIES", ("127.0.0.1/32", "::1/128"), "networks whose `X-Forwarded-For` names "
        "the caller's address (login throttling, audit)", shown="loopback")
    login_account_failures: int = setting(
        "LOGIN_ACCOUNT_FAILURES", 5, "failed logins of one account (or proofs at one kiosk) "
        "before it is locked")
    login_address_failures: int = setting("LOGIN_ADDRESS_FAILURES", 20,
                                          "failed logins from one address before it is locked")
    login_lock_s: float = setting("LOGIN_LOCK_S", 60.0,
                                  "the first lock; each further one doubles, up to an hour")
    login_window_s: float = setting("LOGIN_WINDOW_S", 900.0, "failures count over this window")
    login_hash_concurrency: int = setting(
        "LOGIN_HASH_CONCURRENCY", 4, "password checks at once per node (in threads); more wait "
        "a bounded time, then get `busy`")
    media_max_captures: int = setting("MEDIA_MAX_CAPTURES", 60, "scans one call may take")
    media_origins: tuple[str, ...] = setting(
        "MEDIA_ORIGINS", (), "origins of further media workers pages may reach (CSP "
        "`connect-src`), besides `MEDIA_PUBLIC_URL` (comma-separated)")
    app_db_password: str = setting(
        "APP_DB_PASSWORD", "", "`python -m core.migrate` gives the `vwindow_app` database role "
        "(insert-only audit log) this password and login")

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert_file else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"

    @property
    def media_url(self) -> str:
        scheme = "https" if self.media_tls_cert_file else "http"
        return self.media_public_url or f"{scheme}://{self.media_host}:{self.media_port}"

    @property
    def media_id(self) -> str:
        return self.media_worker_id or f"media-{self.node_id}"

    @property
    def face_match(self) -> FaceMatchConfig:
        return replace(_FACE, pass_below=self.face_pass_below, fail_above=self.face_fail_above,
                       small_portrait_fail_above=self.face_small_portrait_fail_above,
                       best_k=self.face_best_k, min_face_px=self.face_min_px)

    @property
    def liveness(self) -> LivenessConfig:
        return replace(_LIVE, timeout_s=self.liveness_timeout_s,
                       turn_ratio=self.liveness_turn_ratio, nod_ratio=self.liveness_nod_ratio,
                       blink_ratio=self.liveness_blink_ratio)

    @property
    def document(self) -> DocumentThresholds:
        return replace(_DOC, max_edge_blur=self.doc_max_edge_blur,
                       max_glare_fraction=self.doc_max_glare_fraction,
                       min_brightness=self.doc_min_brightness,
                       max_brightness=self.doc_max_brightness,
                       min_area_fraction=self.doc_min_area_fraction,
                       max_corner_angle_deg=self.doc_max_corner_angle_deg,
                       max_side_ratio=self.doc_max_side_ratio)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.face_match, self.liveness, self.document)

    @property
    def evidence_keys(self) -> EvidenceKeys:
        return EvidenceKeys(self.evidence_key_dir, self.evidence_key_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f, kind in table():
            raw = e.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f.metadata["env"], raw, kind)
        settings = cls(**values)
        try:  # the verify thresholds check themselves
            settings.face_match  # noqa: B018
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        if settings.retention_audit_days < 180:
            raise SettingsError("RETENTION_AUDIT_DAYS: the audit log is kept at least 180 days")
        return settings


# --- the table ----------------------------------------------------------------------------


def table() -> list[tuple[dataclasses.Field[Any], Any]]:
    """Every setting with its resolved type, in declaration order."""
    hints = typing.get_type_hints(Settings)
    return [(f, hints[f.name]) for f in dataclasses.fields(Settings)]


def _bool(raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if typing.get_origin(kind) is Literal:
            choices = typing.get_args(kind)
            if raw not in choices:
                raise ValueError("expected " + " or ".join(choices))
            return raw
        if typing.get_origin(kind) is tuple:
            return tuple(int(p) for p in _csv(raw)) if typing.get_args(kind)[0] is int \
                else _csv(raw)
        casts: dict[Any, Callable[[str], Any]] = {bool: _bool, int: int, float: float,
                                                  str: str, Path: Path}
        return casts[kind](raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc


def _shown_default(f: dataclasses.Field[Any]) -> str:
    if f.metadata["shown"]:
        return str(f.metadata["shown"])
    value = f.default
    if value == "" or value == ():
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def markdown_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f, _ in table():
        rows.append(f"| `{f.metadata['env']}` | {_shown_default(f)} | {f.metadata['doc']} |")
    return "\n".join(rows) + "\n"


README_START = "<!-- settings table: python -m core.settings readme -->\n"
README_END = "<!-- end of settings table -->\n"


def readme_with_table(text: str) -> str:
    """README.md's text with the settings section replaced by the generated table."""
    pattern = re.escape(README_START) + r".*?" + re.escape(README_END)
    if not re.search(pattern, text, flags=re.DOTALL):
        raise SettingsError("README.md has no settings table markers")
    return re.sub(pattern, lambda _: README_START + markdown_table() + README_END, text,
                  flags=re.DOTALL)


def _main(argv: list[str]) -> int:
    if argv == ["markdown"]:
        print(markdown_table(), end="")
        return 0
    if argv == ["readme"]:
        readme = ROOT / "README.md"
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")),
                          encoding="utf-8")
        return 0
    print("usage: python -m core.settings markdown | readme", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
