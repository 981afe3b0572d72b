"""Join tokens (signaling → media worker) and TURN REST credentials for joining a call.

A join token is `base64url(json claims) + "." + base64url(HMAC-SHA256(secret, claims))`.
Signaling mints it, the worker checks it; both share `join_token_secret`. Pure functions:
the caller passes `now`. Each token has an id: the worker remembers used ids until they
expire (single use), and a participant's connection is replaced only by a token issued
later for the same participant (a reconnect after a drop).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Literal, cast

JoinRole = Literal["terminal", "clerk", "second_clerk", "control", "watcher"]
ROLES: frozenset[str] = frozenset({"terminal", "clerk", "second_clerk", "control", "watcher"})


class JoinTokenError(ValueError):
    """The token cannot be used; `code` is stable, the message is in plain words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class JoinClaims:
    call_id: str
    participant_id: str
    role: JoinRole
    expires_at: float
    token_id: str = field(default_factory=lambda: secrets.token_hex(8))
    issued_at: float = 0.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def mint(secret: str, claims: JoinClaims) -> str:
    payload = json.dumps(asdict(claims), sort_keys=True, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def verify(secret: str, token: str, now: float) -> JoinClaims:
    """The claims of a valid token; raises JoinTokenError for a bad or expired one."""
    try:
        head, sig = token.split(".")
        payload = _unb64(head)
        given = _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise JoinTokenError("bad_token", "入会凭证格式不正确") from exc
    if not hmac.compare_digest(given, _sign(secret, payload)):
        raise JoinTokenError("bad_token", "入会凭证无效")
    try:
        raw = json.loads(payload)
        claims = JoinClaims(
            call_id=str(raw["call_id"]),
            participant_id=str(raw["participant_id"]),
            role=cast(JoinRole, str(raw["role"])),
            expires_at=float(raw["expires_at"]),
            token_id=str(raw["token_id"]),
            issued_at=float(raw.get("issued_at", 0.0)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise JoinTokenError("bad_token", "入会凭证内容不完整") from exc
    if not 8 <= len(claims.token_id) <= 64:
        raise JoinTokenError("bad_token", "入会凭证编号无效")
    if claims.role not in ROLES:
        raise JoinTokenError("bad_token", "入会凭证角色无效")
    if claims.expires_at <= now:
        raise JoinTokenError("expired_token", "入会凭证已过期，请重新加入")
    return claims


def turn_credentials(secret: str, participant_id: str, now: float, ttl_s: int) -> tuple[str, str]:
    """coturn `use-auth-secret` REST credentials: ("expiry:participant", base64 HMAC-SHA1)."""
    username = f"{int(now) + ttl_s}:{participant_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")
