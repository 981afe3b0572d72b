"""A call ends when its terminal or clerk stays away past the grace period: times fed in."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCPeerConnection

from core import keys
from core.records import make_engine
from core.settings import Settings
from media.call import Call, Participant, gone_too_long
from media.hub import Hub
from testkit.clock import SteppedClock

GRACE = 15.0


def test_only_a_required_participant_gone_too_long_ends_the_call() -> None:
    now = 1000.0
    assert gone_too_long({"T-1": ("terminal", now - GRACE - 1)}, now, GRACE) == "T-1"
    assert gone_too_long({"T-1": ("terminal", now - GRACE + 1)}, now, GRACE) is None
    assert gone_too_long({"c2": ("second_clerk", now - 999)}, now, GRACE) is None
    assert gone_too_long({"c1": ("clerk", None)}, now, GRACE) is None


async def test_the_sweep_ends_the_call_at_the_grace_and_tells_signaling(
        settings: Settings, redis: aioredis.Redis) -> None:
    clock = SteppedClock(1000.0)
    engine = make_engine(settings.database_url)
    hub = Hub(replace(settings, media_grace_s=GRACE, media_record=False), redis, engine, clock)
    try:
        call = Call("call-grace", RTCConfiguration(), clock)
        pc = RTCPeerConnection(RTCConfiguration())
        call.participants["T-1"] = Participant("T-1", "terminal", pc, gone_since=clock())
        hub.calls[call.call_id] = call
        assert await hub.sweep_once(clock() + GRACE - 0.1) == []
        assert await hub.sweep_once(clock() + GRACE + 0.1) == ["call-grace"]
        assert "call-grace" not in hub.calls
        assert await redis.lpop(keys.media_ended()) == \
            '{"call_id": "call-grace", "reason": "participant_gone"}'
    finally:
        await hub.close()
        await engine.dispose()
