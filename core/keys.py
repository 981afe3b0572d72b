"""Every Redis key the system uses, named in one place.

A key is never spelled anywhere else: callers use these functions.
"""

from __future__ import annotations

PREFIX = "vw:"

# --- queue and routing (signaling) ------------------------------------------------------


def waiting(item_code: str) -> str:
    """Sorted set of ticket ids waiting for one service item, scored by (priority, arrival)."""
    return f"{PREFIX}queue:{item_code}"


def waiting_items() -> str:
    """Set of item codes that have (or recently had) a waiting queue."""
    return f"{PREFIX}queue:items"


def ticket(ticket_id: str) -> str:
    """Hash describing one waiting applicant (terminal, item, region, priority, times)."""
    return f"{PREFIX}ticket:{ticket_id}"


def terminal_ticket(terminal_id: str) -> str:
    """The ticket a terminal currently holds (string), so a reconnect finds its place."""
    return f"{PREFIX}terminal:{terminal_id}:ticket"


def terminal_abandoned(terminal_id: str) -> str:
    """Short-lived note (the ticket id) that the terminal's ticket was abandoned while it
    was away, so it is told when it comes back."""
    return f"{PREFIX}terminal:{terminal_id}:abandoned"


def clerk(clerk_id: str) -> str:
    """Hash: status, reason, state, skills, regions, idle_since, offer/call ids, node."""
    return f"{PREFIX}clerk:{clerk_id}"


def clerks_ready() -> str:
    """Sorted set of clerk ids that are ready and idle, scored by idle-since time."""
    return f"{PREFIX}clerks:ready"


def clerks_all() -> str:
    """Set of every clerk id that has a live record."""
    return f"{PREFIX}clerks:all"


def clerk_presence(clerk_id: str) -> str:
    """TTL key refreshed by the clerk's websocket; its absence means the clerk is gone."""
    return f"{PREFIX}presence:clerk:{clerk_id}"


def terminal_presence(terminal_id: str) -> str:
    """TTL key refreshed by the terminal's websocket."""
    return f"{PREFIX}presence:terminal:{terminal_id}"


def offer(offer_id: str) -> str:
    """Hash of one reservation: ticket, clerk, expiry."""
    return f"{PREFIX}offer:{offer_id}"


def offers_expiry() -> str:
    """Sorted set of open offer ids scored by expiry time."""
    return f"{PREFIX}offers:expiry"


def disconnected_terminals() -> str:
    """Sorted set of terminal ids whose connection dropped, scored by grace deadline."""
    return f"{PREFIX}terminals:disconnected"


def wrapups() -> str:
    """Sorted set of clerk ids in wrap-up, scored by wrap-up end."""
    return f"{PREFIX}clerks:wrapup"


def handle_times(item_code: str) -> str:
    """Capped list of recent handle times (seconds) for the estimated wait."""
    return f"{PREFIX}handle:{item_code}"


def call(call_id: str) -> str:
    """Hash of one call: terminal, clerk, item, worker, state."""
    return f"{PREFIX}call:{call_id}"


def counters() -> str:
    """Hash of monotonically increasing counters for the supervisor figures."""
    return f"{PREFIX}counters"


def routing_lock() -> str:
    """Short lock so one node at a time runs the periodic sweeps."""
    return f"{PREFIX}lock:sweep"


def events_channel() -> str:
    """Pub/sub channel that fans events out to every signaling node."""
    return f"{PREFIX}events"


def session(session_id: str) -> str:
    """Login session of a staff account."""
    return f"{PREFIX}session:{session_id}"


# --- media (calls) ----------------------------------------------------------------------


def media_workers() -> str:
    """Set of media worker ids that registered; an id without a live record is dead."""
    return f"{PREFIX}media:workers"


def media_worker(worker_id: str) -> str:
    """Hash (TTL, refreshed by the heartbeat): url, capacity, load, calls, pid, updated_at."""
    return f"{PREFIX}media:worker:{worker_id}"


def media_worker_calls(worker_id: str) -> str:
    """Set of call ids placed on one media worker."""
    return f"{PREFIX}media:worker:{worker_id}:calls"


# An ended call's live hashes stay this long (a late rating, a reconnecting page), then go.
ENDED_CALL_TTL_S = 86400


def media_call(call_id: str) -> str:
    """Hash of one call's media side: worker, names for the watermark, state (expires
    ENDED_CALL_TTL_S after the call left the active state)."""
    return f"{PREFIX}media:call:{call_id}"


def media_ended() -> str:
    """List of JSON events {call_id, reason} pushed by workers for signaling to act on."""
    return f"{PREFIX}media:ended"

# --- approval ---------------------------------------------------------------------------


def approval_tasks(group: str) -> str:
    """Stream of review tasks for one review group (consumer group "reviewers")."""
    return f"{PREFIX}approval:tasks:{group}"


def approval_groups() -> str:
    """Set of review groups that have a task stream."""
    return f"{PREFIX}approval:groups"


def approval_queued() -> str:
    """Set of task ids ("case:seq:group") in a stream and not yet acknowledged."""
    return f"{PREFIX}approval:queued"


def approval_dead() -> str:
    """List of tasks that failed too often (dead letter), newest first."""
    return f"{PREFIX}approval:dead"


def reviewer_online(username: str) -> str:
    """TTL key refreshed while a reviewer (person or automated consumer) is online."""
    return f"{PREFIX}presence:reviewer:{username}"


def approval_group_members(group: str) -> str:
    """Set of reviewers who have been online for a group (filtered by their presence key)."""
    return f"{PREFIX}approval:members:{group}"


def approval_overdue() -> str:
    """Sorted set of overdue steps ("case:seq") scored by due time, for the supervisor."""
    return f"{PREFIX}approval:overdue"


def approval_escalations(group: str) -> str:
    """Capped list of escalations for a group's lead."""
    return f"{PREFIX}approval:escalations:{group}"


def approval_figures() -> str:
    """Hash of approval counters (submitted, decided, reclaimed, dead)."""
    return f"{PREFIX}approval:figures"


def approval_sweep_lock() -> str:
    """Short lock so one approval worker at a time runs the periodic sweep."""
    return f"{PREFIX}lock:approval-sweep"


# --- QA and evidence (approval worker jobs) ----------------------------------------------


def retention_lock() -> str:
    """Lock so one approval worker at a time runs the daily retention job."""
    return f"{PREFIX}lock:retention"


def retention_last_run() -> str:
    """When the retention job last finished (epoch seconds), so a restart does not rerun it."""
    return f"{PREFIX}retention:last-run"


def audit_checkpoint_lock() -> str:
    """Lock so one approval worker at a time signs the audit checkpoint."""
    return f"{PREFIX}lock:audit-checkpoint"


# --- security (sessions, login throttling, join tokens, kiosk proofs) -------------------


def sessions_of(principal: str) -> str:
    """Set of the session ids of one principal ("staff:<username>", "terminal:<id>")."""
    return f"{PREFIX}sessions:{principal}"


def sessions_revoked() -> str:
    """Pub/sub channel: session ids ended now, whose websockets every node closes."""
    return f"{PREFIX}sessions:revoked"


def login_guard(scope: str) -> str:
    """Hash of failed attempts for one scope ("account:<name>", "address:<ip>", ...)."""
    return f"{PREFIX}guard:{scope}"


def join_token_used(token_id: str) -> str:
    """TTL key: this join token was used once (single use until it expires)."""
    return f"{PREFIX}jointoken:{token_id}"


def kiosk_unlock(session_id: str) -> str:
    """JSON (TTL): what a kiosk session may print now (staff PIN, or cases proven)."""
    return f"{PREFIX}kiosk:unlock:{session_id}"


def visit_events() -> str:
    """Stream of queue outcomes (joined, answered, abandoned, left, call ended) for the
    supervisor's figures; copied to PostgreSQL `visit_events` by signaling.visit_log."""
    return f"{PREFIX}ops:visits"



def call_watcher(call_id: str, participant_id: str) -> str:
    """JSON (TTL of a join token): who a watcher's join token is for (username, name)."""
    return f"{PREFIX}watch:{call_id}:{participant_id}"
