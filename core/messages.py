"""Wire messages of the signaling WebSocket, validated at the edge by pydantic.

Every message is `{"type": ..., "id": ...}` plus its fields. Clients send intents; the
server pushes state. `docs/protocol.md` shows one example of each; tests use these models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.ops_figures import CallFigures, SatisfactionFigures, StepFigures
from core.states import ClerkActivity, ClerkStatus, LeaveReason, OfferEnd


class _Msg(BaseModel):
    # Strict at the edge: "yes" is not a bool, "1" is not a number (docs/protocol.md).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: str | None = Field(default=None, max_length=64)


# --- client → server ---------------------------------------------------------------------


class JoinQueue(_Msg):
    type: Literal["join_queue"]
    item_code: str = Field(min_length=1, max_length=32)
    priority: bool = False  # elderly, disabled: served first (declared at the terminal)
    # Region whose office must handle the matter (属地办理); defaults to the terminal's.
    handling_region: str | None = Field(default=None, pattern=r"^\d{2,12}$")


class LeaveQueue(_Msg):
    type: Literal["leave_queue"]


class SetStatus(_Msg):
    type: Literal["set_status"]
    status: Literal["ready", "not_ready"]
    reason: str | None = Field(default=None, max_length=64)


class AcceptOffer(_Msg):
    type: Literal["accept_offer"]
    offer_id: str = Field(min_length=1, max_length=64)


class RejectOffer(_Msg):
    type: Literal["reject_offer"]
    offer_id: str = Field(min_length=1, max_length=64)


class EndCall(_Msg):
    type: Literal["end_call"]
    call_id: str = Field(min_length=1, max_length=64)


class InviteClerk(_Msg):
    type: Literal["invite_clerk"]
    call_id: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)


class AcceptInvite(_Msg):
    type: Literal["accept_invite"]
    call_id: str = Field(min_length=1, max_length=64)


class WrapupDone(_Msg):
    type: Literal["wrapup_done"]


class Ping(_Msg):
    type: Literal["ping"]


ClientMessage = Annotated[
    JoinQueue | LeaveQueue | SetStatus | AcceptOffer | RejectOffer | EndCall | InviteClerk
    | AcceptInvite | WrapupDone | Ping,
    Field(discriminator="type"),
]
client_message = TypeAdapter(ClientMessage)

# --- server → client ---------------------------------------------------------------------


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class MediaJoin(BaseModel):
    """Where and how one participant joins a call on a media worker (WHIP-like POST)."""

    worker_url: str
    call_id: str
    participant_id: str
    role: Literal["terminal", "clerk", "second_clerk", "watcher"]
    token: str
    ice_servers: list[IceServer] = Field(default_factory=list)
    expires_at: float


class Hello(BaseModel):
    type: Literal["hello"] = "hello"
    role: Literal["terminal", "clerk", "reviewer"]
    who: str
    display_name: str
    node_id: str


class QueueStatus(BaseModel):
    """The terminal's place: sent on every change and at least every 10 s."""

    type: Literal["queue_status"] = "queue_status"
    ticket_id: str
    item_code: str
    state: Literal["waiting", "offered"]
    position: int  # 1 = next
    waiting_total: int
    estimated_wait_s: int
    since: float


class LeftQueue(BaseModel):
    type: Literal["left_queue"] = "left_queue"
    ticket_id: str
    reason: LeaveReason


class Offer(BaseModel):
    type: Literal["offer"] = "offer"
    offer_id: str
    ticket_id: str
    item_code: str
    item_name: str
    terminal_id: str
    terminal_name: str
    village: str
    handling_region: str
    priority: bool
    waited_s: int
    expires_at: float


class OfferClosed(BaseModel):
    type: Literal["offer_closed"] = "offer_closed"
    offer_id: str
    reason: OfferEnd


class ClerkState(BaseModel):
    type: Literal["clerk_state"] = "clerk_state"
    status: ClerkStatus
    reason: str | None
    state: ClerkActivity
    offer_id: str | None
    call_id: str | None
    wrapup_until: float | None


class CallAssigned(BaseModel):
    type: Literal["call_assigned"] = "call_assigned"
    call_id: str
    ticket_id: str
    item_code: str
    terminal_id: str
    terminal_name: str
    clerk_username: str
    clerk_name: str
    media: MediaJoin | None  # None while no media worker is available
    # The call moved to another media worker (its own died): join again even if the
    # old connection still looks alive.
    rejoin: bool = False


class CallInvite(BaseModel):
    type: Literal["call_invite"] = "call_invite"
    call_id: str
    from_username: str
    from_name: str
    item_code: str


class CallEnded(BaseModel):
    type: Literal["call_ended"] = "call_ended"
    call_id: str
    reason: str


class Pong(BaseModel):
    type: Literal["pong"] = "pong"


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str  # plain words, safe to show to the person
    ref: str | None = None  # id of the client message it answers


# --- the supervisor's live view (`/ws/supervisor`, signaling.supervisor) -------------------


class SupervisorItem(BaseModel):
    item_code: str
    item_name: str
    waiting: int
    longest_wait_s: int


class SupervisorClerk(BaseModel):
    username: str
    display_name: str
    # ready | offered | in_call | wrap_up | not_ready | offline (就绪/来电/通话中/整理中/暂停/离线)
    state: str
    reason: str
    since: float | None  # when this state began, as far as it is known


class SupervisorCall(BaseModel):
    call_id: str
    item_code: str
    terminal_name: str
    clerk: str
    clerk_name: str
    started_at: float
    identity: str  # the latest identity check's verdict, "" when none yet


class SupervisorDay(BaseModel):
    """Today's figures and the charts (the day by hour, the last 30 days by day)."""

    calls: CallFigures
    satisfaction: SatisfactionFigures
    answer_within_s: float
    hours: dict[str, list[int]]  # answered / abandoned per hour of today
    days: list[str]  # the last 30 dates, oldest first
    by_day: dict[str, list[int]]  # answered / abandoned per day
    steps: list[StepFigures]
    open_followups: int


class SupervisorSnapshot(BaseModel):
    """The whole view: on connect and after a gap."""

    type: Literal["supervisor_snapshot"] = "supervisor_snapshot"
    at: float
    items: list[SupervisorItem]
    clerks: list[SupervisorClerk]
    calls: list[SupervisorCall]
    day: SupervisorDay | None


class SupervisorUpdate(BaseModel):
    """Only the parts that changed since the last message (at most about one a second)."""

    type: Literal["supervisor_update"] = "supervisor_update"
    at: float
    items: list[SupervisorItem] | None = None
    clerks: list[SupervisorClerk] | None = None
    calls: list[SupervisorCall] | None = None
    day: SupervisorDay | None = None



class CallWatching(BaseModel):
    """监看: who is watching the call now (receive-only); an empty list when nobody is."""

    type: Literal["call_watching"] = "call_watching"
    call_id: str
    watchers: list[str]  # display names
# --- identity check in the call (media worker → the call's participants) -------------------

IdentityStepName = Literal["card", "face", "match"]


class IdentityStep(BaseModel):
    """What the check is doing now; the kiosk shows `prompt` large and `guidance` under it."""

    type: Literal["identity_step"] = "identity_step"
    call_id: str
    verification_id: str
    attempt: int
    step: IdentityStepName
    prompt: str  # the step's instruction, Chinese
    guidance: str  # live guidance (the card) or the current move (the face), Chinese
    move: Literal["left", "right", "nod", "blink"] | None  # the move asked now, for the arrow
    completed: int  # moves done so far
    moves: int  # moves in the challenge
    time_left_s: float | None  # of this step
    waiting: bool = False  # the worker's verification is full: the check waits in line


class IdentityEvidence(BaseModel):
    kind: Literal["card", "portrait", "live"]
    index: int  # GET /api/identity/{verification_id}/evidence/{index}
    scan_id: str | None = None  # the card was taken from this scan of the call, not the video


class IdentityResult(BaseModel):
    """The outcome of one attempt, for the clerks of the call (the kiosk gets `identity_done`)."""

    type: Literal["identity_result"] = "identity_result"
    call_id: str
    verification_id: str
    attempt: int
    attempts_left: int
    state: Literal["decided", "aborted"]
    verdict: Literal["通过", "人工复核", "不通过"] | None
    distance: float | None
    thresholds: dict[str, float]
    reasons: list[str]
    liveness: dict[str, str | bool | int | float | list[str]]
    id_number: str | None  # read from the card, valid; None when unreadable
    id_read_reason: str
    evidence: list[IdentityEvidence]
    elapsed_s: float


class IdentityDone(BaseModel):
    """The kiosk's end of an attempt: finished, or why not; never a score."""

    type: Literal["identity_done"] = "identity_done"
    call_id: str
    verification_id: str
    finished: bool
    message: str
# --- document capture (from the media worker, through core.fanout) -------------------------


class DocGuidance(BaseModel):
    """What the open capture panel shows now (clerk: `words`, kiosk: `kiosk_words`)."""

    type: Literal["doc_guidance"] = "doc_guidance"
    call_id: str
    material_name: str
    page: int
    verdict: str  # ok | not_found | cut_off | too_small | too_dark | ... | no_picture
    words: str
    kiosk_words: str
    outline: list[float] | None  # 8 numbers: the corners as shares of the frame
    ready: bool
    auto: bool
    frame_at: float  # worker time the judged frame reached the worker (decoded)


class DocTakeStill(BaseModel):
    """The kiosk takes a full-resolution still of the document camera and uploads it."""

    type: Literal["doc_take_still"] = "doc_take_still"
    call_id: str
    take_id: str
    material_name: str
    page: int
    reason: Literal["clerk", "auto"]


class DocScanResult(BaseModel):
    """A still was accepted (the flattened page) or refused (why)."""

    type: Literal["doc_scan_result"] = "doc_scan_result"
    call_id: str
    take_id: str | None
    accepted: bool
    code: str
    words: str
    material_code: str
    material_name: str
    page: int
    scan_id: str | None
    verdict: str | None
    flat_width: int
    flat_height: int
    from_video: bool


class DocPanelClosed(BaseModel):
    type: Literal["doc_panel_closed"] = "doc_panel_closed"
    call_id: str


ServerMessage = (
    Hello | QueueStatus | LeftQueue | Offer | OfferClosed | ClerkState | CallAssigned
    | CallInvite | CallEnded | Pong | ErrorMessage | SupervisorSnapshot | SupervisorUpdate
    | CallWatching
    | CallInvite | CallEnded | Pong | ErrorMessage
    | IdentityStep | IdentityResult | IdentityDone
    | DocGuidance | DocTakeStill | DocScanResult | DocPanelClosed
)

