"""Replay tickets (pure): round trip, expiry, forgery, and no confusion with join tokens."""

from __future__ import annotations

import pytest

from core import jointoken
from core.replayticket import ReplayClaims, ReplayTicketError, mint, verify

SECRET = "s3cret"
CLAIMS = ReplayClaims("call-1", 7, "qa1", "质检员 赵磊", "replay", 1000.0)


def test_a_ticket_round_trips_until_it_expires() -> None:
    ticket = mint(SECRET, CLAIMS)
    assert verify(SECRET, ticket, 999.0) == CLAIMS
    with pytest.raises(ReplayTicketError) as expired:
        verify(SECRET, ticket, 1000.0)
    assert expired.value.code == "expired_ticket"


def test_forged_or_foreign_tickets_are_refused() -> None:
    ticket = mint(SECRET, CLAIMS)
    other = mint(SECRET, ReplayClaims("call-2", 7, "qa1", "x", "replay", 1000.0))
    spliced = ticket.rsplit(".", 1)[0].replace(ticket.split(".")[1], other.split(".")[1]) \
        + "." + ticket.rsplit(".", 1)[1]
    join = jointoken.mint(SECRET, jointoken.JoinClaims("call-1", "qa1", "clerk", 1000.0))
    for bad in (mint("other-secret", CLAIMS), spliced, "garbage", "rt1.x.y", join):
        with pytest.raises(ReplayTicketError) as refused:
            verify(SECRET, bad, 0.0)
        assert refused.value.code == "bad_ticket"
    # Nor does a replay ticket pass as a join token.
    with pytest.raises(jointoken.JoinTokenError):
        jointoken.verify(SECRET, ticket, 0.0)
