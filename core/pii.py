"""Personal data at rest: ID and phone numbers encrypted (AES-GCM), found by a keyed hash,
and masked wherever they are shown or logged whole without need.

The key file (`PII_KEY_FILE`, mode 0600) holds one `hash` key (HMAC-SHA256 for exact
search; it never changes, or the search index must be rebuilt) and one or more `enc` keys;
the last `enc` key encrypts, every one decrypts (rotation). A ciphertext is
`<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, bound to its place (table, column, row)
as associated data so it cannot be moved to another row.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEY_ID = re.compile(r"^[a-z0-9-]{1,16}$")
# An 18-character ID number (or 15 digits, old cards) and a mainland mobile number.
_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{5}|\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE_LIKE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


class PiiKeyError(ValueError):
    """The key file is missing, unreadable, or cannot open a value."""


def mask_id_number(id_number: str) -> str:
    """First 6 and last 4 characters, the rest as `*` (as certificates print it)."""
    if len(id_number) <= 10:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_text(text: str) -> str:
    """Anything in free text that looks like an ID or mobile number, masked (log lines)."""
    text = _ID_LIKE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return _PHONE_LIKE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PiiKeys:
    hash_key: bytes
    enc_keys: dict[str, bytes] = field(default_factory=dict)  # in file order; last encrypts
    current: str = ""

    @classmethod
    def parse(cls, text: str) -> PiiKeys:
        hash_key = b""
        enc: dict[str, bytes] = {}
        current = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            try:
                if parts[0] == "hash" and len(parts) == 2:
                    hash_key = _unb64(parts[1])
                elif parts[0] == "enc" and len(parts) == 3 and _KEY_ID.match(parts[1]):
                    enc[parts[1]] = _unb64(parts[2])
                    current = parts[1]
                else:
                    raise PiiKeyError(f"unreadable key line: {parts[0]}")
            except ValueError as exc:
                raise PiiKeyError("unreadable key file") from exc
        if len(hash_key) != 32 or not enc or any(len(k) != 32 for k in enc.values()):
            raise PiiKeyError("the key file needs one 32-byte hash key and 32-byte enc keys")
        return cls(hash_key, enc, current)

    @classmethod
    def load(cls, path: Path) -> PiiKeys:
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PiiKeyError(f"cannot read {path}: {exc.strerror}") from exc

    # --- values -------------------------------------------------------------------------

    def encrypt(self, value: str, place: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.enc_keys[self.current]).encrypt(nonce, value.encode(),
                                                             place.encode())
        return f"{self.current}:{_b64(nonce + sealed)}"

    def decrypt(self, token: str, place: str) -> str:
        key_id, _, body = token.partition(":")
        key = self.enc_keys.get(key_id)
        if key is None or not body:
            raise PiiKeyError(f"no key {key_id!r} for a stored value")
        try:
            raw = _unb64(body)
            return AESGCM(key).decrypt(raw[:12], raw[12:], place.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise PiiKeyError("a stored value does not open (changed or moved)") from exc

    def search_hash(self, kind: str, value: str) -> str:
        """Keyed hash of a normalized value, for exact search (`kind`: "id_number")."""
        normal = value.strip().upper()
        return hmac.new(self.hash_key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()

    def slip_code(self, case_no: str) -> str:
        """The unguessable part of a slip's QR code: proof of holding the slip."""
        digest = hmac.new(self.hash_key, f"slip:{case_no}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode("ascii")


def new_key_file(path: Path) -> None:
    """Write a fresh key file (0600); refuses to overwrite one (that would lose the data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# 远程虚拟窗口 personal-data keys: keep secret, back up with the database.\n"
            f"hash {_b64(secrets.token_bytes(32))}\n"
            f"enc k1 {_b64(secrets.token_bytes(32))}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def add_enc_key(path: Path) -> str:
    """Rotation: append a new encryption key (new values use it; old ones still open)."""
    keys = PiiKeys.load(path)
    n = 1 + max(int(k[1:]) for k in keys.enc_keys if k[1:].isdigit())
    key_id = f"k{n}"
    with path.open("a", encoding="utf-8") as f:
        f.write(f"enc {key_id} {_b64(secrets.token_bytes(32))}\n")
    return key_id


def keys_for(path: Path, local: bool) -> PiiKeys:
    """The process's keys; `make run` and the tests get a key file made on first use."""
    if local and not path.exists():
        with contextlib.suppress(FileExistsError):  # another local process made it first
            new_key_file(path)
    return PiiKeys.load(path)
