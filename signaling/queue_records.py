"""What the queue keeps in Redis, as typed records: tickets, clerks, offers, calls.

Each record reads itself from a Redis hash (`from_hash`); the scripts in
`signaling.queue_scripts` write them. Results of the racing scripts are enums.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from core.states import CallState, ClerkActivity, ClerkStatus, TicketState
from signaling.routing import ClerkCandidate, WaitingApplicant


class ReserveResult(IntEnum):
    RESERVED = 1
    TICKET_TAKEN = 0  # the ticket is no longer waiting
    CLERK_BUSY = -1  # the clerk is no longer ready and idle


class AcceptResult(IntEnum):
    ACCEPTED = 1
    NOT_YOURS = 0  # not this clerk's open offer (or the applicant left)
    EXPIRED = -2


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    terminal_id: str
    terminal_name: str
    village: str
    item_code: str
    handling_region: str
    priority: bool
    enqueued_at: float
    state: TicketState
    offer_id: str
    call_id: str

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Ticket:
        return cls(
            ticket_id=h["ticket_id"], terminal_id=h["terminal_id"],
            terminal_name=h.get("terminal_name", ""), village=h.get("village", ""),
            item_code=h["item_code"], handling_region=h["handling_region"],
            priority=h.get("priority") == "1", enqueued_at=float(h["enqueued_at"]),
            state=TicketState(h["state"]), offer_id=h.get("offer_id", ""),
            call_id=h.get("call_id", ""),
        )

    def to_fields(self) -> dict[str, str]:
        return {
            "ticket_id": self.ticket_id, "terminal_id": self.terminal_id,
            "terminal_name": self.terminal_name, "village": self.village,
            "item_code": self.item_code, "handling_region": self.handling_region,
            "priority": "1" if self.priority else "0", "enqueued_at": repr(self.enqueued_at),
            "state": self.state.value, "offer_id": self.offer_id, "call_id": self.call_id,
        }

    @property
    def waiting(self) -> bool:
        """Still in the queue (offered applicants keep their place at the head)."""
        return self.state in (TicketState.WAITING, TicketState.OFFERED)

    def applicant(self) -> WaitingApplicant:
        return WaitingApplicant(self.ticket_id, self.item_code, self.handling_region,
                                self.priority, self.enqueued_at,
                                self.state != TicketState.WAITING)


@dataclass(frozen=True)
class ClerkRecord:
    username: str
    display_name: str
    status: ClerkStatus
    reason: str
    state: ClerkActivity
    skills: frozenset[str]
    jurisdictions: tuple[str, ...]
    region_code: str
    idle_since: float
    offer_id: str
    call_id: str
    wrapup_until: float | None

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> ClerkRecord:
        return cls(
            username=h["username"], display_name=h.get("display_name", h["username"]),
            status=ClerkStatus(h.get("status", "offline")), reason=h.get("reason", ""),
            state=ClerkActivity(h.get("state", "idle")),
            skills=frozenset(json.loads(h.get("skills", "[]"))),
            jurisdictions=tuple(json.loads(h.get("jurisdictions", "[]"))),
            region_code=h.get("region_code", ""), idle_since=float(h.get("idle_since") or 0),
            offer_id=h.get("offer_id", ""), call_id=h.get("call_id", ""),
            wrapup_until=float(h["wrapup_until"]) if h.get("wrapup_until") else None,
        )

    @property
    def free(self) -> bool:
        """Ready and idle: the clerk may be offered an applicant now."""
        return (self.status, self.state) == (ClerkStatus.READY, ClerkActivity.IDLE)

    def candidate(self) -> ClerkCandidate:
        return ClerkCandidate(self.username, self.skills, self.jurisdictions, self.region_code,
                              self.idle_since)


@dataclass(frozen=True)
class QueueHead:
    """Part of one item queue: the tickets still waiting in it, where to read on from and
    whether anything is left there."""

    item_code: str
    next_start: int
    more: bool
    waiting: list[Ticket]


@dataclass(frozen=True)
class RosterEntry:
    username: str
    status: ClerkStatus
    skills: frozenset[str]
    present: bool


@dataclass(frozen=True)
class OfferRecord:
    offer_id: str
    clerk: str
    ticket_id: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class CallRecord:
    """One call as routing keeps it: who is in it and how it stands."""

    call_id: str
    ticket_id: str
    item_code: str
    terminal_id: str
    terminal_name: str
    clerk: str
    clerk_name: str
    state: CallState
    started_at: float
    second_clerk: str = ""
    invited: str = ""

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> CallRecord:
        return cls(
            call_id=h["call_id"], ticket_id=h["ticket_id"], item_code=h["item_code"],
            terminal_id=h["terminal_id"], terminal_name=h.get("terminal_name", ""),
            clerk=h["clerk"], clerk_name=h.get("clerk_name", ""),
            state=CallState(h.get("state", "active")),
            started_at=float(h.get("started_at") or 0), second_clerk=h.get("second_clerk", ""),
            invited=h.get("invited", ""))

    def to_fields(self) -> dict[str, str]:
        return {
            "call_id": self.call_id, "ticket_id": self.ticket_id, "item_code": self.item_code,
            "terminal_id": self.terminal_id, "terminal_name": self.terminal_name,
            "clerk": self.clerk, "clerk_name": self.clerk_name, "state": self.state.value,
            "started_at": repr(self.started_at), "second_clerk": self.second_clerk,
            "invited": self.invited,
        }

    @property
    def active(self) -> bool:
        return self.state == CallState.ACTIVE

    def clerks(self) -> list[str]:
        return [u for u in (self.clerk, self.second_clerk) if u]
