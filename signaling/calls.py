"""Call set-up on media workers: pick a worker, mint join tokens, watch worker health.

Stub until the calls issue lands: no media worker is known, so calls carry no media info.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from core.messages import MediaJoin


@dataclass(frozen=True)
class CallStart:
    call_id: str
    ticket_id: str
    item_code: str
    terminal_id: str
    terminal_name: str
    clerk_username: str
    clerk_name: str


async def start_call(app: web.Application, call: CallStart) -> dict[str, MediaJoin | None]:
    """Place the call on a worker; join info per participant id (terminal id, username)."""
    return {call.terminal_id: None, call.clerk_username: None}


async def join_for(
    app: web.Application, call_id: str, participant_id: str, role: str
) -> MediaJoin | None:
    """Fresh join info for one participant (a reconnect, or the invited second clerk)."""
    return None


async def stop_call(app: web.Application, call_id: str, reason: str) -> None:
    """Tell the call's worker to end it and finalize the recording."""


def setup(app: web.Application) -> None:
    """Add the routes and background tasks of call handling to the signaling app."""
