"""Electronic seal: Ed25519 over the canonical certificate content, with key ids for rotation.

Keys live as `<key id>.pem` under the settings' key folder, encrypted with the
`ESEAL_PASSPHRASE`; new certificates are signed with the current key, and old ones keep
verifying as long as their key file is kept. Only `make run` and the tests make a missing
key on first use; production makes it once with `python -m signaling.admin new-seal-key`.
"""

from __future__ import annotations

import base64
import contextlib
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


class SealKeyMissing(RuntimeError):
    """No signing key: production never makes one silently."""


def write_key(folder: Path, key_id: str, passphrase: str) -> Path:
    """A new Ed25519 key file (0600), encrypted with the passphrase when one is given."""
    if not _KEY_ID.match(key_id):
        raise ValueError(f"invalid seal key id {key_id!r}")
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    crypt: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
        else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            crypt)
    path = folder / f"{key_id}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


class SealKeys:
    def __init__(self, folder: Path, current_id: str, passphrase: str = "",
                 generate: bool = True) -> None:
        if not _KEY_ID.match(current_id):
            raise ValueError(f"invalid seal key id {current_id!r}")
        self.folder = folder
        self.current_id = current_id
        self.passphrase = passphrase
        self.generate = generate
        self._private: dict[str, Ed25519PrivateKey] = {}

    def _path(self, key_id: str) -> Path | None:
        return self.folder / f"{key_id}.pem" if _KEY_ID.match(key_id) else None

    def private(self, key_id: str) -> Ed25519PrivateKey | None:
        if key_id in self._private:
            return self._private[key_id]
        path = self._path(key_id)
        if path is None or not path.exists():
            return None
        data = path.read_bytes()
        encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
        key = serialization.load_pem_private_key(
            data, password=self.passphrase.encode() if encrypted else None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        self._private[key_id] = key
        return key

    def current(self) -> Ed25519PrivateKey:
        """The signing key; `make run` and the tests create it on first use."""
        key = self.private(self.current_id)
        if key is not None:
            return key
        if not self.generate:
            raise SealKeyMissing(f"no e-seal key {self.current_id} under {self.folder}: "
                                 "python -m signaling.admin new-seal-key")
        with contextlib.suppress(FileExistsError):  # another local process made it first
            write_key(self.folder, self.current_id, self.passphrase)
        key = self.private(self.current_id)
        assert key is not None
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
