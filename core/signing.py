"""Evidence signatures: Ed25519 with key ids, shared by the processes that sign evidence.

The media worker signs the end of each recording's hash chain, the approval worker signs
audit checkpoints, signaling signs evidence exports. Keys live as `<key id>.pem` (private,
0600) and `<key id>.pub.pem` (public) under one folder; a verifier needs only the public
files, so an auditor can be given those and nothing else. Several processes may create
the first key at once: the one that links its file first wins, the others load it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def canonical(content: Any) -> str:
    """The exact text that is signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(pem: str) -> str:
    """What an operator compares by eye: SHA-256 of the public key, first 16 hex digits."""
    key = serialization.load_pem_public_key(pem.encode())
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def check_with_pem(pem: str, text: str, signature: str) -> bool:
    try:
        key = serialization.load_pem_public_key(pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            return False
        key.verify(_unb64(signature), text.encode())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class EvidenceKeys:
    """The signing keys in one folder; `current_id` signs, every kept key verifies."""

    def __init__(self, folder: Path, current_id: str) -> None:
        if not KEY_ID.match(current_id):
            raise ValueError(f"invalid evidence key id {current_id!r}")
        self.folder = folder
        self.current_id = current_id
        self._private: dict[str, Ed25519PrivateKey] = {}

    def _load_private(self, key_id: str) -> Ed25519PrivateKey | None:
        if key_id in self._private:
            return self._private[key_id]
        path = self.folder / f"{key_id}.pem"
        if not KEY_ID.match(key_id) or not path.exists():
            return None
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        self._private[key_id] = key
        return key

    def _create(self) -> Ed25519PrivateKey:
        self.folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        final = self.folder / f"{self.current_id}.pem"
        temp = self.folder / f".{self.current_id}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, final)  # atomic: a complete file or none, never two keys
        except FileExistsError:
            os.unlink(temp)
            loaded = self._load_private(self.current_id)
            if loaded is None:
                raise
            return loaded
        os.unlink(temp)
        (self.folder / f"{self.current_id}.pub.pem").write_text(public_pem(key.public_key()))
        self._private[self.current_id] = key
        return key

    def current(self) -> Ed25519PrivateKey:
        """The signing key, created on first use."""
        return self._load_private(self.current_id) or self._create()

    def public(self, key_id: str) -> str | None:
        """The public key (PEM) of `key_id`, from its public file or its private key."""
        if not KEY_ID.match(key_id):
            return None
        path = self.folder / f"{key_id}.pub.pem"
        if path.exists():
            return path.read_text()
        private = self._load_private(key_id)
        return None if private is None else public_pem(private.public_key())

    def sign(self, text: str) -> tuple[str, str]:
        """(signature as base64url, key id)."""
        return _b64(self.current().sign(text.encode())), self.current_id

    def check(self, text: str, signature: str, key_id: str) -> bool:
        pem = self.public(key_id)
        return pem is not None and check_with_pem(pem, text, signature)
