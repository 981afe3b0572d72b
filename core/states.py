"""The states of the live service, as the wire messages and the Redis records spell them.

String enums: a value is stored in Redis and sent to clients as its plain string.
"""

from __future__ import annotations

from enum import StrEnum


class TicketState(StrEnum):
    """Where a waiting applicant's ticket is."""

    WAITING = "waiting"
    OFFERED = "offered"  # reserved for one clerk, who has not answered yet
    IN_CALL = "in_call"


class ClerkStatus(StrEnum):
    """What the clerk chose (or the presence check decided)."""

    OFFLINE = "offline"
    READY = "ready"
    NOT_READY = "not_ready"


class ClerkActivity(StrEnum):
    """What the clerk is doing, apart from the chosen status."""

    IDLE = "idle"
    OFFERED = "offered"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"


class CallState(StrEnum):
    ACTIVE = "active"
    ENDING = "ending"  # signaling asked the worker to stop it
    ENDED = "ended"
    FAILED = "failed"  # its media worker died


class LeaveReason(StrEnum):
    LEFT = "left"  # the applicant left the queue
    ABANDONED = "abandoned"  # the terminal stayed away longer than the grace period


class OfferEnd(StrEnum):
    """Why an offer closed."""

    TIMEOUT = "timeout"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    ACCEPTED = "accepted"

