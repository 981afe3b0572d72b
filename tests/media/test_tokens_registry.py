"""Join tokens, TURN REST credentials, worker choice and the segment hash chain (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import redis.asyncio as aioredis

from core import keys
from core.evidence import GENESIS, chain_hash
from core.jointoken import JoinClaims, JoinTokenError, mint, turn_credentials, verify
from core.states import CallState
from core.worker_registry import (
    PlacedCall,
    WorkerInfo,
    call_ended_here,
    live_workers,
    load_figure,
    pick_worker,
    place_call,
    register,
    set_call_state,
)
from media.recording import verify_chain

SECRET = "s3cret"


def test_token_round_trip_and_refusals() -> None:
    claims = JoinClaims("call-1", "T-1", "terminal", 1000.0)
    token = mint(SECRET, claims)
    assert verify(SECRET, token, 999.0) == claims
    with pytest.raises(JoinTokenError) as expired:
        verify(SECRET, token, 1000.0)
    assert expired.value.code == "expired_token"
    _, sig = token.split(".")
    forged = mint(SECRET, JoinClaims("call-1", "T-1", "clerk", 1000.0)).split(".")[0]
    for bad in (f"{forged}.{sig}", "garbage", token + "x", mint("other", claims)):
        with pytest.raises(JoinTokenError) as refused:
            verify(SECRET, bad, 0.0)
        assert refused.value.code == "bad_token" and refused.value.message


def test_turn_credentials_follow_coturn_rest_scheme() -> None:
    username, credential = turn_credentials("turn-secret", "clerk-a", 1000.0, 3600)
    assert username == "4600:clerk-a"
    expected = hmac.new(b"turn-secret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def _worker(worker_id: str, load: float, calls: int = 0) -> WorkerInfo:
    return WorkerInfo(worker_id, f"http://127.0.0.1/{worker_id}", 4, load, calls, 1, 0.0)


def test_pick_least_loaded_below_threshold() -> None:
    workers = [_worker("a", 0.5), _worker("b", 0.25), _worker("c", 0.8)]
    assert pick_worker(workers, 0.7) == workers[1]
    assert pick_worker([_worker("c", 0.8), _worker("d", 0.9)], 0.7) is None
    assert load_figure(0, 4, 0.9) == 0.0  # idle: nothing of its own uses the CPU
    assert load_figure(1, 4, 0.1) == 0.25
    assert load_figure(1, 4, 0.6) == 0.6
    assert load_figure(9, 4, 0.1) == 1.0


async def test_registry_lists_live_and_expired_workers(redis: aioredis.Redis) -> None:
    await register(redis, _worker("live", 0.1), ttl_s=30)
    await register(redis, _worker("gone", 0.1), ttl_s=0.05)
    await redis.pexpire("vw:media:worker:gone", 1)
    while await redis.exists("vw:media:worker:gone"):
        pass
    live, dead = await live_workers(redis)
    assert [w.worker_id for w in live] == ["live"] and dead == ["gone"]


async def test_an_ended_calls_media_record_expires(redis: aioredis.Redis) -> None:
    # A soak found these kept for ever: one hash per call ever placed.
    for call_id in ("call-a", "call-b", "call-c"):
        await place_call(redis, PlacedCall(call_id, "w1", "http://w1", CallState.ACTIVE))
    assert await redis.ttl(keys.media_call("call-a")) == -1  # a live call never expires
    await set_call_state(redis, "call-a", CallState.ENDING, "hangup")
    await set_call_state(redis, "call-b", CallState.FAILED, "media_failed")
    await call_ended_here(redis, "w1", "call-c", "hangup", notify=False)
    for call_id in ("call-a", "call-b", "call-c"):
        ttl = await redis.ttl(keys.media_call(call_id))
        assert 0 < ttl <= keys.ENDED_CALL_TTL_S, (call_id, ttl)


def test_hash_chain_detects_a_changed_or_missing_segment() -> None:
    shas = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    rows = []
    prev = GENESIS
    for sha in shas:
        chained = chain_hash(prev, sha)
        rows.append((sha, prev, chained))
        prev = chained
    assert verify_chain(rows)
    assert not verify_chain([rows[0], rows[2]])
    assert not verify_chain([rows[0], ("0" * 64, rows[1][1], rows[1][2]), rows[2]])
