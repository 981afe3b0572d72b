"""Errors the HTTP API returns: a status, a stable code and a message in plain words."""

from __future__ import annotations

import json

from aiohttp import web


def http_error(
    cls: type[web.HTTPError], code: str, message: str
) -> web.HTTPError:
    """An aiohttp HTTP exception with a JSON body `{"error": {"code", "message"}}`."""
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
    return cls(text=body, content_type="application/json")
