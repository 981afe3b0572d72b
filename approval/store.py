"""Case records in PostgreSQL: every workflow transition in one transaction with its audit entry.

Each change locks the case row, runs the pure workflow, writes the case, its steps and
decisions, issues the certificate when the case is approved, and appends to the audit log.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from approval import certificate as cert
from approval import workflow as wf
from approval.calendar import WorkCalendar
from approval.eseal import SealKeys, canonical
from approval.revocation import revocation_text
from approval.tables import case_materials, case_steps, cases, certificates, decisions
from core import audit, records
from core.pii import PiiKeys, keys_for
from core.settings import Settings

VisitOutcome = Literal["稍等片刻", "现场开单", "当面说清", "放心回家"]
_SCAN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CaseSubmission(BaseModel):
    """What the clerk captured, as posted to `POST /api/cases`."""

    terminal_id: str = Field(min_length=1, max_length=64)
    call_id: str | None = Field(default=None, max_length=64)
    item_code: str = Field(min_length=1, max_length=32)
    applicant_name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=24)
    phone: str = Field(pattern=r"^[0-9+\- ]{5,20}$")
    scans: list[str] = Field(default_factory=list, max_length=50)
    verification: dict[str, Any] = Field(default_factory=dict)
    materials_provided: list[str] = Field(default_factory=list, max_length=50)
    materials_missing: list[str] = Field(default_factory=list, max_length=50)
    promise_date: date | None = None
    outcome: VisitOutcome

    @field_validator("verification")
    @classmethod
    def _small_verification(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(canonical(v).encode()) > 64 * 1024:
            raise ValueError("核验结果过大（上限64KB），请只提交结论、分数和帧编号")
        return v

    @field_validator("scans")
    @classmethod
    def _scan_ids(cls, v: list[str]) -> list[str]:
        for s in v:
            if not _SCAN_ID.match(s):
                raise ValueError("扫描件编号格式不正确")
        return v


class CaseRefused(ValueError):
    """The case cannot be created or changed; the message is for the user (Chinese)."""


class CaseNotFound(LookupError):
    pass


@dataclass(frozen=True)
class CaseChange:
    """The result of one transition, for the caller to carry out the effects after commit."""

    case_no: str
    terminal_id: str
    state: wf.CaseState
    effects: tuple[wf.Effect, ...]
    applied: Literal["applied", "duplicate", "stale"] = "applied"
    item_name: str = ""  # set when the case is created (for the applicant's slip)


def _summary(state: wf.CaseState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    run = state.current
    return {"status": state.status, "seq": run.seq if run else None,
            "open_groups": run.open_groups() if run else [],
            "missing": state.missing(), "certificate_no": state.certificate_no}


class CaseStore:
    def __init__(self, engine: AsyncEngine, calendar: WorkCalendar, seal: SealKeys,
                 issuer: str, pii: PiiKeys) -> None:
        self.engine = engine
        self.calendar = calendar
        self.seal = seal
        self.issuer = issuer
        self.pii = pii

    def open_case(self, row: dict[str, Any]) -> dict[str, Any]:
        """A case row with its ID and phone numbers decrypted (for the caller to mask)."""
        case_no = row["case_no"]
        return {**row, "id_number": self.pii.decrypt(row["id_number"],
                                                     f"cases.id_number:{case_no}"),
                "phone": self.pii.decrypt(row["phone"], f"cases.phone:{case_no}")}

    # --- create -------------------------------------------------------------------------

    async def create(self, sub: CaseSubmission, clerk: str, now: datetime,
                     call_clerks: tuple[str, ...] = ()) -> CaseChange:
        """A new case; `call_clerks` are the clerks of its call (they may read it)."""
        async with self.engine.begin() as conn:
            item = (await conn.execute(select(records.service_items).where(
                records.service_items.c.code == sub.item_code,
                records.service_items.c.active))).mappings().first()
            if item is None:
                raise CaseRefused("事项不存在或已停用")
            known = {m["name"]: bool(m["core"]) for m in item["materials"]}
            unknown = set(sub.materials_missing) - set(known)
            if unknown:
                raise CaseRefused("材料不在该事项清单中：" + "、".join(sorted(unknown)))
            materials = [wf.CaseMaterial(name=n, core=c, provided=n not in sub.materials_missing)
                         for n, c in known.items()]
            case_no = f"{now:%Y%m%d}-{secrets.token_hex(4).upper()}"
            try:
                config = wf.WorkflowConfig.model_validate(item["workflow"])
                t = wf.submit(case_no, config, int(item["time_limit_days"]), materials,
                              sub.promise_date, now, self.calendar)
            except wf.InvalidTransition as exc:
                raise CaseRefused(str(exc)) from exc
            await conn.execute(cases.insert().values(
                case_no=case_no, item_code=sub.item_code, item_name=item["name"],
                terminal_id=sub.terminal_id, call_id=sub.call_id, clerk=clerk,
                applicant_name=sub.applicant_name,
                id_number=self.pii.encrypt(sub.id_number, f"cases.id_number:{case_no}"),
                phone=self.pii.encrypt(sub.phone, f"cases.phone:{case_no}"),
                id_number_hash=self.pii.search_hash("id_number", sub.id_number),
                call_clerks=sorted({clerk, *call_clerks}), scans=sub.scans,
                verification=sub.verification, outcome=sub.outcome,
                **self._case_columns(t.state, now)))
            await conn.execute(case_materials.insert(), [
                {"case_no": case_no, "name": m.name, "core": m.core, "provided": m.provided,
                 "promised_date": None if m.provided else sub.promise_date}
                for m in materials])
            await self._write_steps(conn, t.state)
            await audit.append(conn, clerk, "case.submit", case_no, None,
                               {**(_summary(t.state) or {}), "item_code": sub.item_code,
                                "outcome": sub.outcome}, now)
        return CaseChange(case_no, sub.terminal_id, t.state, t.effects,
                          item_name=str(item["name"]))

    # --- transitions --------------------------------------------------------------------

    async def decide(self, case_no: str, seq: int, group: str, reviewer: str,
                     decision: wf.ReviewDecision, comment: str, now: datetime) -> CaseChange:
        """Apply a reviewer's decision once: a redelivered task finds it already recorded."""
        async with self.engine.begin() as conn:
            state, terminal = await self._lock(conn, case_no)
            done = (await conn.execute(select(decisions.c.id).where(and_(
                decisions.c.case_no == case_no, decisions.c.seq == seq,
                decisions.c.group_code == group)))).first()
            if done is not None:
                return CaseChange(case_no, terminal, state, (), "duplicate")
            run = state.current
            if run is None or run.seq != seq or group not in run.open_groups():
                return CaseChange(case_no, terminal, state, (), "stale")
            try:
                t = wf.decide(state, group, reviewer, decision, comment, now, self.calendar)
            except wf.InvalidTransition as exc:
                raise CaseRefused(str(exc)) from exc
            await conn.execute(decisions.insert().values(
                case_no=case_no, seq=seq, group_code=group, reviewer=reviewer,
                decision=decision, comment=comment, at=now))
            t = await self._finish(conn, t, now)
            await self._save(conn, t.state, now)
            await audit.append(conn, reviewer, f"case.{decision}", case_no, _summary(state),
                               {**(_summary(t.state) or {}), "group": group, "seq": seq,
                                "comment": comment}, now)
        return CaseChange(case_no, terminal, t.state, t.effects)

    async def transition(self, case_no: str, actor: str, action: str,
                         fn: Callable[[wf.CaseState], wf.Transition],
                         now: datetime) -> CaseChange:
        """Any other transition (resubmit, materials arrived, deliver, archive, tick)."""
        async with self.engine.begin() as conn:
            state, terminal = await self._lock(conn, case_no)
            try:
                t = fn(state)
            except wf.InvalidTransition as exc:
                raise CaseRefused(str(exc)) from exc
            if t.state == state:
                return CaseChange(case_no, terminal, state, t.effects, "stale")
            t = await self._finish(conn, t, now)
            await self._save(conn, t.state, now)
            if action == "case.materials":
                await conn.execute(case_materials.update().where(and_(
                    case_materials.c.case_no == case_no,
                    case_materials.c.arrived_at.is_(None),
                    case_materials.c.name.in_([m.name for m in t.state.materials
                                               if m.provided]),
                    ~case_materials.c.provided)).values(provided=True, arrived_at=now))
            if action == "case.deliver":
                await conn.execute(certificates.update().where(
                    certificates.c.case_no == case_no).values(printed_at=now))
            await audit.append(conn, actor, action, case_no, _summary(state),
                               _summary(t.state), now)
        return CaseChange(case_no, terminal, t.state, t.effects)

    async def resubmit(self, case_no: str, actor: str, now: datetime) -> CaseChange:
        return await self.transition(case_no, actor, "case.resubmit",
                               lambda s: wf.resubmit(s, now, self.calendar), now)

    async def materials_arrived(self, case_no: str, actor: str, names: list[str],
                                now: datetime) -> CaseChange:
        return await self.transition(case_no, actor, "case.materials",
                               lambda s: wf.materials_arrived(s, names, now), now)

    async def deliver(self, case_no: str, actor: str, now: datetime) -> CaseChange:
        return await self.transition(case_no, actor, "case.deliver",
                                     lambda s: wf.deliver(s, now), now)

    async def tick(self, now: datetime) -> list[CaseChange]:
        """Deadlines: expired 容缺 promises and overdue steps of live cases."""
        live = cases.c.status.in_(["in_review", "returned", "awaiting_materials"])
        async with self.engine.connect() as conn:
            late_steps = select(case_steps.c.case_no).where(
                case_steps.c.ended_at.is_(None), ~case_steps.c.escalated,
                case_steps.c.due_at < now)
            late_promises = select(case_materials.c.case_no).where(
                ~case_materials.c.provided, case_materials.c.promised_date < now.date())
            query = select(cases.c.case_no).where(live, or_(
                cases.c.case_no.in_(late_steps), cases.c.case_no.in_(late_promises)))
            due = (await conn.execute(query)).scalars().all()
        changes = []
        for case_no in due:
            change = await self.transition(case_no, "system", "case.tick",
                                           lambda s: wf.tick(s, now), now)
            if change.applied == "applied":
                changes.append(change)
        return changes

    # --- reads --------------------------------------------------------------------------

    async def get(self, case_no: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cases).where(cases.c.case_no == case_no))
                   ).mappings().first()
            if row is None:
                raise CaseNotFound(case_no)
            steps = (await conn.execute(select(case_steps).where(
                case_steps.c.case_no == case_no).order_by(case_steps.c.seq))).mappings().all()
            votes = (await conn.execute(select(decisions).where(
                decisions.c.case_no == case_no).order_by(decisions.c.id))).mappings().all()
            mats = (await conn.execute(select(case_materials).where(
                case_materials.c.case_no == case_no))).mappings().all()
        return {"case": self.open_case(dict(row)), "steps": [dict(s) for s in steps],
                "decisions": [dict(v) for v in votes], "materials": [dict(m) for m in mats]}

    async def queue(self, groups: list[str], limit: int = 100) -> list[dict[str, Any]]:
        """Cases with an open task for any of `groups`, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(
                cases.c.case_no, cases.c.item_name, cases.c.applicant_name, cases.c.status,
                cases.c.open_groups, cases.c.submitted_at, cases.c.due_at, cases.c.state,
            ).where(cases.c.open_groups.overlap(groups)).order_by(cases.c.submitted_at)
                .limit(limit))).mappings().all()
        out = []
        for r in rows:
            state = wf.CaseState.model_validate(r["state"])
            run = state.current
            out.append({"case_no": r["case_no"], "item_name": r["item_name"],
                        "applicant_name": r["applicant_name"], "status": r["status"],
                        "groups": [g for g in r["open_groups"] if g in groups],
                        "seq": run.seq if run else None, "level": run.level if run else None,
                        "submitted_at": r["submitted_at"].isoformat(),
                        "step_due_at": run.due_at.isoformat() if run else None,
                        "overdue": bool(run and run.due_at < datetime.now(UTC))})
        return out

    async def by_terminal(self, terminal_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Recent cases of one terminal, newest first (what the kiosk may show)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(
                cases.c.case_no, cases.c.item_name, cases.c.status, cases.c.submitted_at,
                cases.c.state["certificate_no"].astext.label("certificate_no"),
            ).where(cases.c.terminal_id == terminal_id).order_by(cases.c.submitted_at.desc())
                .limit(limit))).mappings().all()
        return [{**dict(r), "submitted_at": r["submitted_at"].isoformat()} for r in rows]

    async def by_clerk(self, clerk: str, limit: int = 50) -> list[dict[str, Any]]:
        """A clerk's recent cases, newest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(
                cases.c.case_no, cases.c.item_name, cases.c.applicant_name, cases.c.status,
                cases.c.submitted_at, cases.c.open_groups,
            ).where(cases.c.clerk == clerk).order_by(cases.c.submitted_at.desc())
                .limit(limit))).mappings().all()
        return [{**dict(r), "submitted_at": r["submitted_at"].isoformat()} for r in rows]

    async def step_figures(self, since: datetime) -> list[dict[str, Any]]:
        """环节分段计时: per level, steps finished since `since`, mean and max duration."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(
                case_steps.c.level, func.count().label("steps"),
                func.avg(case_steps.c.duration_s).label("mean_s"),
                func.max(case_steps.c.duration_s).label("max_s"),
                func.count().filter(case_steps.c.escalated).label("escalated"),
            ).where(case_steps.c.ended_at >= since).group_by(case_steps.c.level))
            ).mappings().all()
        return [{"level": r["level"], "steps": int(r["steps"]),
                 "mean_s": float(r["mean_s"] or 0), "max_s": float(r["max_s"] or 0),
                 "escalated": int(r["escalated"])} for r in rows]

    async def archive_due(self, before: datetime) -> list[CaseChange]:
        """Finished cases last changed before `before` are archived."""
        async with self.engine.connect() as conn:
            due = (await conn.execute(select(cases.c.case_no).where(
                cases.c.status.in_(["delivered", "rejected", "terminated"]),
                cases.c.updated_at < before).limit(500))).scalars().all()
        return [await self.transition(n, "system", "case.archive", wf.archive, before)
                for n in due]

    async def open_tasks(self) -> list[tuple[str, int, str]]:
        """(case, seq, group) for every task PostgreSQL says is open: the truth for resync."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(cases.c.case_no, cases.c.state).where(
                func.cardinality(cases.c.open_groups) > 0))).all()
        out: list[tuple[str, int, str]] = []
        for case_no, raw in rows:
            run = wf.CaseState.model_validate(raw).current
            if run is not None:
                out.extend((case_no, run.seq, g) for g in run.open_groups())
        return out

    async def certificate(self, certificate_no: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(certificates).where(
                certificates.c.certificate_no == certificate_no))).mappings().first()
        return None if row is None else dict(row)

    async def revoke(self, certificate_no: str, actor: str, reason: str, now: datetime) -> None:
        """Revoke, with the seal's signature over who revoked it, when and why."""
        at = now.astimezone(UTC).replace(microsecond=0)
        signature, _ = self.seal.sign(revocation_text(certificate_no, at, reason, actor))
        async with self.engine.begin() as conn:
            await conn.execute(certificates.update().where(
                certificates.c.certificate_no == certificate_no).values(
                revoked_at=at, revoked_reason=reason, revoked_by=actor,
                revocation_signature=f"{self.seal.current_id}.{signature}"))
            await audit.append(conn, actor, "certificate.revoke", certificate_no, None,
                               {"reason": reason}, now)

    # --- internals ----------------------------------------------------------------------

    async def _lock(self, conn: AsyncConnection, case_no: str) -> tuple[wf.CaseState, str]:
        row = (await conn.execute(select(cases.c.state, cases.c.terminal_id).where(
            cases.c.case_no == case_no).with_for_update())).first()
        if row is None:
            raise CaseNotFound(case_no)
        return wf.CaseState.model_validate(row[0]), str(row[1])

    def _case_columns(self, state: wf.CaseState, now: datetime) -> dict[str, Any]:
        run = state.current
        return {"status": state.status, "open_groups": run.open_groups() if run else [],
                "state": state.model_dump(mode="json"), "submitted_at": state.submitted_at,
                "due_at": state.due_at, "decided_at": state.decided_at, "updated_at": now}

    async def _save(self, conn: AsyncConnection, state: wf.CaseState, now: datetime) -> None:
        await conn.execute(cases.update().where(cases.c.case_no == state.case_no).values(
            **self._case_columns(state, now)))
        await self._write_steps(conn, state)

    async def _write_steps(self, conn: AsyncConnection, state: wf.CaseState) -> None:
        for run in state.steps[-2:]:  # only the last two can have changed
            row = {"case_no": state.case_no, "seq": run.seq, "level": run.level,
                   "groups": run.groups, "mode": run.mode, "started_at": run.started_at,
                   "due_at": run.due_at, "ended_at": run.ended_at,
                   "duration_s": run.duration_s, "outcome": run.outcome,
                   "escalated": run.escalated}
            stmt = insert(case_steps).values(row)
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["case_no", "seq"],
                set_={k: v for k, v in row.items() if k not in ("case_no", "seq")}))

    async def _finish(self, conn: AsyncConnection, t: wf.Transition,
                      now: datetime) -> wf.Transition:
        """Issue the certificate in the same transaction as the approval that earns it."""
        if wf.IssueCertificate() not in t.effects:
            return t
        row = (await conn.execute(select(cases.c.case_no, cases.c.item_code,
                                         cases.c.item_name, cases.c.applicant_name,
                                         cases.c.id_number, cases.c.phone).where(
            cases.c.case_no == t.state.case_no))).mappings().one()
        opened = self.open_case(dict(row))
        number = f"E{now:%Y%m%d}{secrets.token_hex(5).upper()}"
        fields = cert.content(number, t.state.case_no, row["item_code"], row["item_name"],
                              row["applicant_name"], opened["id_number"], self.issuer, now,
                              self.seal.current_id)
        text = canonical(fields)
        signature, key_id = self.seal.sign(text)
        await conn.execute(certificates.insert().values(
            certificate_no=number, case_no=t.state.case_no, content=text, signature=signature,
            key_id=key_id, issued_at=now))
        issued = wf.issue_certificate(t.state, number)
        return wf.Transition(issued.state, t.effects)


def make_store(engine: AsyncEngine, settings: Settings) -> CaseStore:
    """The case store as configured: working calendar, seal keys, issuer."""
    calendar = WorkCalendar.parse(",".join(settings.approval_holidays),
                                  ",".join(settings.approval_makeup_days))
    local = settings.run_mode == "local"
    seal = SealKeys(settings.eseal_key_dir, settings.eseal_key_id,
                    settings.eseal_passphrase, generate=local)
    return CaseStore(engine, calendar, seal, settings.eseal_issuer,
                     keys_for(settings.pii_key_file, local))

