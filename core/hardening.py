"""What a production process refuses to start with: default or short secrets, missing keys.

Every process (`python -m signaling | media | approval`) calls `refuse_unsafe` first. Only
`RUN_MODE=local` (set by `make run` and the test stacks, never by docker/) lets the demo
defaults through. The checks are a pure function of the settings and the key files.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import Literal

from core.settings import Settings

Process = Literal["signaling", "media", "approval", "migrate"]
MIN_SECRET = 32  # characters; `openssl rand -hex 32` gives 64
MIN_PASSPHRASE = 16


def _default(name: str) -> object:
    return next(f.default for f in fields(Settings) if f.name == name)


def problems(settings: Settings, process: Process) -> list[str]:
    """Why this process must not start in production (empty: it may)."""
    if settings.run_mode == "local":
        return []
    found: list[str] = []
    secret = settings.join_token_secret
    if secret == _default("join_token_secret") or len(secret) < MIN_SECRET:
        found.append(f"JOIN_TOKEN_SECRET is the default or shorter than {MIN_SECRET} characters")
    if len(settings.ops_token) < MIN_SECRET:
        found.append(f"OPS_TOKEN is missing or shorter than {MIN_SECRET} characters")
    if settings.media_turn_urls and len(settings.media_turn_secret) < MIN_SECRET:
        found.append(f"MEDIA_TURN_SECRET is missing or shorter than {MIN_SECRET} characters")
    if process in ("signaling", "approval"):
        if not settings.public_url.startswith("https://"):
            found.append("PUBLIC_URL must be the https:// address browsers use")
        if not settings.cookie_secure:
            found.append("COOKIE_SECURE must be true (sessions travel only over TLS)")
        if len(settings.eseal_passphrase) < MIN_PASSPHRASE:
            found.append(f"ESEAL_PASSPHRASE is missing or shorter than {MIN_PASSPHRASE} "
                         "characters")
        if not (settings.eseal_key_dir / f"{settings.eseal_key_id}.pem").is_file():
            found.append(f"no e-seal key {settings.eseal_key_id} under {settings.eseal_key_dir} "
                         "(python -m signaling.admin new-seal-key)")
        if not settings.pii_key_file.is_file():
            found.append(f"PII_KEY_FILE {settings.pii_key_file} does not exist "
                         "(python -m signaling.admin new-pii-key)")
    return found


def refuse_unsafe(settings: Settings, process: Process) -> None:
    """Exit with the list of problems when the settings are not fit for production."""
    found = problems(settings, process)
    if not found:
        return
    lines = "\n".join(f"  - {p}" for p in found)
    print(f"{process}: 拒绝启动：生产环境的安全设置不完整 / refusing to start with unsafe "
          f"settings (RUN_MODE=local is only for make run and the tests):\n{lines}",
          file=sys.stderr)
    raise SystemExit(2)
