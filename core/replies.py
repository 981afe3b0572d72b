"""Error replies of every HTTP API: a status, a stable code and a message in plain words.

The body is always `{"error": {"code", "message"}}`, so a page shows `message` to the
person and branches on `code`, whichever process answered.
"""

from __future__ import annotations

import json

from aiohttp import web


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)


def http_error(cls: type[web.HTTPError], code: str, message: str) -> web.HTTPError:
    """An aiohttp HTTP exception carrying the error body (raise it)."""
    return cls(text=error_body(code, message), content_type="application/json")


def error_response(status: int, code: str, message: str) -> web.Response:
    """The same body as a plain response (return it), for any status."""
    return web.Response(status=status, text=error_body(code, message),
                        content_type="application/json")
