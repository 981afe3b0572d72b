"""The `/ws` endpoint: one websocket per terminal kiosk or clerk console.

Each text frame is one JSON message validated by `core.messages`; anything wrong gets an
`error` message with a code, a log line, and the connection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from core.messages import (
    AcceptInvite,
    AcceptOffer,
    EndCall,
    ErrorMessage,
    Hello,
    InviteClerk,
    JoinQueue,
    LeaveQueue,
    Ping,
    Pong,
    RejectOffer,
    SetStatus,
    WrapupDone,
    client_message,
)
from core.replies import http_error
from signaling.appkeys import SETTINGS
from signaling.auth import Session, current_session, session_id
from signaling.client_error import ClientError
from signaling.connections import Connection
from signaling.node import NODE, SignalingNode
from signaling.policy import may_send
from signaling.ratelimit import TokenBucket
from signaling.sessions import SOCKETS

log = logging.getLogger("signaling.ws")

MAX_ID = 64  # as core.messages allows
FLUSH_BEFORE_CLOSE_S = 2.0  # a flooding client still gets its errors before the close
HARD_FRAME_LIMIT = 1024 * 1024  # beyond this aiohttp closes the socket (1009)
HEARTBEAT_S = 10.0  # websocket ping interval; aiohttp waits half of it for the pong
ABUSE_LIMIT = 200  # dropped messages before a flooding client is disconnected
SLOW_INTENT_S = 0.25  # intents slower than this are logged


async def _handle(node: SignalingNode, session: Session, conn: Connection, raw: str) -> None:
    try:
        msg = client_message.validate_json(raw)
    except ValidationError as exc:
        code, text = _validation_error(exc)
        conn.send_model(ErrorMessage(code=code, message=text, ref=_frame_id(raw, code)))
        log.info("bad message", extra={"who": session.who, "code": code})
        return
    if not may_send(session.role, msg.type):
        conn.send_model(ErrorMessage(code="forbidden_type", message="当前身份不能发送这个消息",
                                     ref=msg.id))
        log.info("message not allowed for role", extra={"who": session.who, "type": msg.type})
        return
    started = time.monotonic()
    # A clerk's intent may make an offer: bulk position pushes wait while it is in flight.
    urgent = node.positions.urgent() if session.role == "clerk" else contextlib.nullcontext()
    try:
        async with urgent:
            await _dispatch(node, session, conn, msg)
        took = time.monotonic() - started
        if took > SLOW_INTENT_S:
            log.warning("slow intent", extra={"who": session.who, "type": msg.type,
                                              "ms": round(took * 1000)})
    except ClientError as exc:
        conn.send_model(ErrorMessage(code=exc.code, message=exc.message, ref=msg.id))
        log.info("intent refused", extra={"who": session.who, "code": exc.code})
    except Exception:
        # One failed intent must not drop the connection; the person sees plain words.
        log.exception("intent failed", extra={"who": session.who, "type": msg.type})
        conn.send_model(ErrorMessage(code="internal", message="服务器暂时出错，请稍后再试",
                                     ref=msg.id))


async def _dispatch(node: SignalingNode, s: Session, conn: Connection, msg: object) -> None:
    match msg:
        case JoinQueue():
            await node.terminals.join_queue(s, conn.conn_id, msg.item_code, msg.priority,
                                            msg.handling_region)
        case LeaveQueue():
            await node.terminals.leave_queue(s)
        case SetStatus():
            await node.clerks.set_status(s, msg.status, msg.reason)
        case AcceptOffer():
            await node.calls.accept(s, msg.offer_id)
        case RejectOffer():
            await node.clerks.reject(s, msg.offer_id)
        case EndCall():
            await node.calls.end(msg.call_id, "hangup", by=s.who)
        case InviteClerk():
            await node.calls.invite(s, msg.call_id, msg.username)
        case AcceptInvite():
            await node.calls.join_invited(s, msg.call_id)
        case WrapupDone():
            await node.clerks.wrapup_done(s)
        case Ping():
            conn.send_model(Pong())


def _frame_id(raw: str, code: str) -> str | None:
    """The `id` of a parsed frame that failed validation, to answer it by `ref`."""
    if code == "invalid_json":
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    given = frame.get("id") if isinstance(frame, dict) else None
    return given if isinstance(given, str) and len(given) <= MAX_ID else None


def _validation_error(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return "invalid_json", "消息不是有效的 JSON"
    if any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in errors):
        return "unknown_type", "不认识的消息类型"
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "?" for e in errors[:3])
    return "invalid_message", f"消息字段不正确：{fields}"


async def _cleanup(node: SignalingNode, session: Session, conn: Connection) -> None:
    await conn.stop()
    try:
        if session.role == "terminal":
            await node.terminals.disconnected(session, conn)
        elif session.role == "clerk":
            await node.clerks.disconnected(session, conn)
    finally:
        log.info("disconnected", extra={"who": session.who, "conn": conn.conn_id})


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    session = await current_session(request)
    if session is None:
        raise http_error(web.HTTPUnauthorized, "not_logged_in", "请先登录")
    if session.role not in ("terminal", "clerk", "reviewer"):
        raise http_error(web.HTTPForbidden, "forbidden", "只有终端、坐席和审批人员可以连接")
    settings = request.app[SETTINGS]
    node = request.app[NODE]
    # A ping after 10 s of silence and 5 s for its pong: a village link's delay spikes (and
    # a busy kiosk) must not drop the socket, as 2.5 s did in the soak; a dead one goes in 15 s.
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=HARD_FRAME_LIMIT)
    await ws.prepare(request)
    target = f"{session.role}:{session.who}"
    conn = Connection(ws, secrets.token_hex(8), target)
    node.delivery.conns.add(conn)
    sid = session_id(request) or ""
    request.app[SOCKETS].add(sid, ws)  # closed when the session ends (logout, revocation)
    bucket = TokenBucket(settings.ws_rate_per_s, settings.ws_rate_burst)
    dropped = 0
    log.info("connected", extra={"who": session.who, "role": session.role, "conn": conn.conn_id})
    try:
        if session.role == "terminal":
            await node.terminals.connected(session, conn)
        elif session.role == "clerk":
            await node.clerks.connected(session, conn)
        else:
            conn.send_model(Hello(role="reviewer", who=session.who,
                                  display_name=session.display_name,
                                  node_id=settings.node_id))
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                if not bucket.allow(time.monotonic()):
                    dropped += 1
                    conn.send_model(ErrorMessage(code="rate_limited",
                                                 message="操作太频繁，请稍后再试"))
                    if dropped >= ABUSE_LIMIT:
                        log.warning("flooding client disconnected", extra={"who": session.who})
                        await conn.flush(FLUSH_BEFORE_CLOSE_S)  # one error per drop, all sent
                        await ws.close(code=1008, message=b"rate limit")
                    continue
                data: str = frame.data
                if len(data.encode()) > settings.ws_max_message_bytes:
                    conn.send_model(ErrorMessage(code="too_large", message="消息太大"))
                    log.info("oversized message", extra={"who": session.who,
                                                         "bytes": len(data)})
                    continue
                await _handle(node, session, conn, data)
            elif frame.type == WSMsgType.BINARY:
                conn.send_model(ErrorMessage(code="binary_not_supported",
                                             message="只接受文本消息"))
            elif frame.type == WSMsgType.ERROR:
                log.info("websocket error", extra={"who": session.who,
                                                   "error": repr(ws.exception())})
    finally:
        node.delivery.conns.remove(conn)
        request.app[SOCKETS].remove(sid, ws)
        # aiohttp may cancel the handler when the peer vanishes; the cleanup (presence,
        # grace period, pending offer) must still run, so it runs as its own task.
        await asyncio.shield(node.spawn(_cleanup(node, session, conn)))
    return ws
