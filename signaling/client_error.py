"""An intent that cannot be carried out: a stable code and plain words for the person."""

from __future__ import annotations


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
