"""Electronic seal: Ed25519 over the canonical certificate content, with key ids for rotation.

Keys live as `<key id>.pem` under the settings' key folder; new certificates are signed
with the current key, and old ones keep verifying as long as their key file is kept.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def canonical(content: dict[str, Any]) -> str:
    """The exact text that is signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SealKeys:
    def __init__(self, folder: Path, current_id: str) -> None:
        if not _KEY_ID.match(current_id):
            raise ValueError(f"invalid seal key id {current_id!r}")
        self.folder = folder
        self.current_id = current_id
        self._private: dict[str, Ed25519PrivateKey] = {}

    def _path(self, key_id: str) -> Path | None:
        return self.folder / f"{key_id}.pem" if _KEY_ID.match(key_id) else None

    def private(self, key_id: str) -> Ed25519PrivateKey | None:
        if key_id in self._private:
            return self._private[key_id]
        path = self._path(key_id)
        if path is None or not path.exists():
            return None
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        self._private[key_id] = key
        return key

    def current(self) -> Ed25519PrivateKey:
        """The signing key, created on first use (mode 0600)."""
        key = self.private(self.current_id)
        if key is not None:
            return key
        self.folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path = self.folder / f"{self.current_id}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self._private[self.current_id] = key
        return key

    def public(self, key_id: str) -> Ed25519PublicKey | None:
        key = self.private(key_id)
        return None if key is None else key.public_key()

    def sign(self, text: str) -> tuple[str, str]:
        """(signature as base64url, key id)."""
        sig = self.current().sign(text.encode())
        return base64.urlsafe_b64encode(sig).decode().rstrip("="), self.current_id

    def check(self, text: str, signature: str, key_id: str) -> bool:
        public = self.public(key_id)
        if public is None:
            return False
        try:
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            public.verify(raw, text.encode())
        except (InvalidSignature, ValueError):
            return False
        return True
