"""Replay tickets (signaling → media worker): who may watch which recording, until when.

Signaling checks the QA user and the purpose, logs the access, and mints a ticket; the
browser hands it to a media worker (as a bearer token, never in a URL), which renders the
recording with the viewer's name burned in. Like a join token, HMAC-SHA256 with the
shared secret, but over a distinct prefix so neither kind passes for the other. Pure
functions: the caller passes `now`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from typing import Literal, cast

ReplayKind = Literal["replay", "download"]
_DOMAIN = b"vw-replay-ticket-v1:"
PREFIX = "rt1."


class ReplayTicketError(ValueError):
    """The ticket cannot be used; `code` is stable, the message is in plain words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ReplayClaims:
    call_id: str
    access_id: int  # the row of the QA access log this viewing belongs to
    viewer: str  # username
    viewer_name: str  # burned into the picture
    kind: ReplayKind
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), _DOMAIN + payload, hashlib.sha256).digest()


def mint(secret: str, claims: ReplayClaims) -> str:
    payload = json.dumps(asdict(claims), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode()
    return f"{PREFIX}{_b64(payload)}.{_b64(_sign(secret, payload))}"


def verify(secret: str, token: str, now: float) -> ReplayClaims:
    """The claims of a valid ticket; raises ReplayTicketError for a bad or expired one."""
    try:
        if not token.startswith(PREFIX):
            raise ValueError("not a replay ticket")
        head, sig = token[len(PREFIX):].split(".")
        payload, given = _unb64(head), _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise ReplayTicketError("bad_ticket", "回放凭证格式不正确") from exc
    if not hmac.compare_digest(given, _sign(secret, payload)):
        raise ReplayTicketError("bad_ticket", "回放凭证无效")
    try:
        raw = json.loads(payload)
        claims = ReplayClaims(
            call_id=str(raw["call_id"]), access_id=int(raw["access_id"]),
            viewer=str(raw["viewer"]), viewer_name=str(raw["viewer_name"]),
            kind=cast(ReplayKind, str(raw["kind"])), expires_at=float(raw["expires_at"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ReplayTicketError("bad_ticket", "回放凭证内容不完整") from exc
    if claims.kind not in ("replay", "download"):
        raise ReplayTicketError("bad_ticket", "回放凭证类型无效")
    if claims.expires_at <= now:
        raise ReplayTicketError("expired_ticket", "回放凭证已过期，请重新打开录像")
    return claims
