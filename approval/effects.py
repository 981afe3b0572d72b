"""Carrying out a transition's effects after its commit: streams, the terminal, escalations.

Everything here can be replayed: enqueueing is idempotent and the sweep re-derives open
tasks from PostgreSQL, so a crash between commit and this step loses nothing.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from approval import streams
from approval import workflow as wf
from approval.messages import CaseResult, StepOverdue
from approval.store import CaseChange
from core import keys
from core.fanout import publish, reviewer_target, terminal_target

ESCALATIONS_KEPT = 200


def certificate_url(base_url: str, certificate_no: str) -> str:
    return f"{base_url}/api/certificates/{certificate_no}.pdf"


async def reopen(redis: aioredis.Redis, state: wf.CaseState) -> int:
    """Enqueue every open task of the case's current step (no-op for those queued)."""
    run = state.current
    if state.status != "in_review" or run is None:
        return 0
    added = 0
    for g in run.open_groups():
        added += await streams.enqueue(redis, state.case_no, run.seq, g,
                                       run.started_at.timestamp())
    return added


def group_leads(pairs: tuple[str, ...]) -> dict[str, str]:
    """Parse the APPROVAL_GROUP_LEADS setting ("group=username" items)."""
    return dict(p.split("=", 1) for p in pairs if "=" in p)


async def carry_out(redis: aioredis.Redis, change: CaseChange, base_url: str,
                    leads: dict[str, str] | None = None) -> None:
    state = change.state
    for effect in change.effects:
        if isinstance(effect, wf.OpenTasks):
            run = next(s for s in state.steps if s.seq == effect.seq)
            for g in effect.groups:
                await streams.enqueue(redis, state.case_no, effect.seq, g,
                                      run.started_at.timestamp())
        elif isinstance(effect, wf.CancelTasks):
            await streams.cancel(redis, state.case_no, effect.seq, list(effect.groups))
        elif isinstance(effect, wf.NotifyApplicant):
            number = state.certificate_no
            await publish(redis, terminal_target(change.terminal_id), CaseResult(
                case_no=state.case_no, status=state.status,
                status_name=wf.STATUS_NAMES[state.status], reason=effect.reason,
                certificate_no=number,
                certificate_url=certificate_url(base_url, number) if number else None))
        elif isinstance(effect, wf.Escalate):
            await _escalate(redis, state, effect, leads or {})
    ended = [f"{state.case_no}:{s.seq}" for s in state.steps[-2:] if s.ended_at is not None]
    if ended:
        await redis.zrem(keys.approval_overdue(), *ended)
    if change.applied == "applied":
        await redis.hincrby(keys.approval_figures(), f"status:{state.status}", 1)


async def _escalate(redis: aioredis.Redis, state: wf.CaseState, effect: wf.Escalate,
                    leads: dict[str, str]) -> None:
    run = next(s for s in state.steps if s.seq == effect.seq)
    await redis.zadd(keys.approval_overdue(),
                     {f"{state.case_no}:{effect.seq}": run.due_at.timestamp()})
    for g in effect.groups:
        entry = json.dumps({"case_no": state.case_no, "seq": effect.seq, "group": g,
                            "due_at": run.due_at.isoformat()}, ensure_ascii=False)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.approval_escalations(g), entry)
            pipe.ltrim(keys.approval_escalations(g), 0, ESCALATIONS_KEPT - 1)
            await pipe.execute()
        if g in leads:
            await publish(redis, reviewer_target(leads[g]), StepOverdue(
                case_no=state.case_no, group=g, seq=effect.seq, due_at=run.due_at.isoformat()))
