"""The identity check of a call, on the worker: card → portrait and ID number → liveness →
match → verdict, one attempt at a time, up to `MAX_ATTEMPTS` per call.

Frames are sampled a few times a second and only while a check runs: the latest
document-camera frame from the capture buffer, the latest face-camera frame from the
call's face hook. Only sampled frames are converted; every dlib/OpenCV step is a job in
the verification pool. Each attempt is a row of `identity_checks` (written at start and at
the end), its evidence images under `verification/<call id>/` with their SHA-256. Both
sides hear every step; the kiosk never sees a score.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from av import VideoFrame
from pydantic import BaseModel
from sqlalchemy import func, insert, select, update

from core.call_events import CallEventKind
from core.document_tables import document_scans
from core.identity_tables import IdentityState, IdentityVerdict, identity_checks
from core.messages import IdentityDone, IdentityEvidence, IdentityResult, IdentityStep
from core.pii import keys_for, mask_id_number
from core.worker_registry import placed_call
from media.call import Call
from media.frames import pixels
from media.notices import CLERKS, EVERYONE, Roles, tell
from media.verification_pool import PoolBusy, PoolTimeout
from verify.face_config import FaceMatchConfig
from verify.face_match import LiveFace, decide_encoded
from verify.face_model import RGB
from verify.id_ocr import IdNumberReading, read_id_number
from verify.identity_samples import (
    GUIDANCE_TEXT,
    MODEL_VERSION,
    CardGuidance,
    CardSample,
    FaceSample,
    card_from_still,
    card_sample,
    face_sample,
)
from verify.identity_verdict import combine
from verify.liveness import PROMPTS, LivenessSession, LivenessVerdict, new_challenge
from verify.portrait import IdPortrait

log = logging.getLogger("media.identity")

MAX_ATTEMPTS = 3
PROMPT_CARD = "第一步：请把身份证有照片的一面放在下面的摄像头下"
PROMPT_FACE = "第二步：请看着屏幕上方的摄像头"
PROMPT_CARD_SCAN = "第一步：用刚才拍好的身份证"
PROMPT_MATCH = "正在核对，请稍候"
SCANNED_CARDS = 4  # ID-card scans of the call tried, newest first (front and back, retakes)
DONE_TEXT = "核验完成"
REASON_NO_CARD = "没有找到身份证，请把有照片的一面放平在下面的摄像头下再试一次"
REASON_NO_FACE_FRAMES = "没有收到面部摄像头的画面"
REASON_STOPPED = "通话已结束，核验中止"
REASON_WORKER_LOST = "媒体服务中断，核验中止，请重新核验"
WAIT_TEXT = "正在排队核验，请稍候，不用动"
SCAN_READING_TEXT = "正在查看拍好的身份证，请稍候"
VERDICTS = {"pass": IdentityVerdict.PASS, "review": IdentityVerdict.REVIEW,
            "fail": IdentityVerdict.FAIL}
MOVE_WORDS = {"left": "请慢慢向左转头", "right": "请慢慢向右转头", "nod": "请点点头",
              "blink": "请眨眨眼"}
T = TypeVar("T")


@dataclass(frozen=True)
class IdentityTimes:
    card_s: float = 40.0  # to get the card taken
    card_every_s: float = 0.3  # a card sample at most this often (guidance a few times a second)
    face_every_s: float = 0.12  # face samples at most ~8 per second
    face_extra_s: float = 3.0  # the face step may run this much past the liveness limit
    encode_frames: int = 6  # live frames encoded for the match (frontal, gated)
    job_s: float = 20.0  # one pool job (the card with its OCR is the longest: ~1 s idle)
    busy_wait_s: float = 0.5  # a full pool: wait this long, then try again (in line)
    queue_s: float = 20.0  # waiting in line for the pool at most this long per job


class CheckAborted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FaceHook:
    """The latest face-camera frame while a check samples it (set from the call's keeper)."""

    latest: tuple[float, VideoFrame] | None = None

    def __call__(self, now: float, frame: VideoFrame) -> None:
        self.latest = (now, frame)


@dataclass
class Attempt:
    call: Call
    verification_id: str
    number: int
    terminal_id: str
    clerk: str
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    evidence: list[dict[str, str]] = field(default_factory=list)
    shown: IdentityStep | None = None  # the last step both sides were told
    card_scan: str | None = None  # the call's ID-card scan the card was taken from


def _rgb(frame: VideoFrame) -> RGB:
    return pixels(frame, "rgb24")


def _jpeg(image: RGB) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(data.tobytes())


class IdentityChecks:
    """The checks of one worker's calls; `start` is the `identity.start` call action."""

    def __init__(self, hub: Any, times: IdentityTimes | None = None) -> None:
        self.hub = hub
        self.times = times or IdentityTimes()
        self.running: dict[str, asyncio.Task[None]] = {}
        self._adoptions: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._rng = random.SystemRandom()

    def install(self) -> None:
        self.hub.actions["identity.start"] = self.start

    # --- the action -------------------------------------------------------------------

    async def start(self, call: Call, body: dict[str, Any], actor: str) -> dict[str, Any]:
        if self.hub.pool is None:
            return {"error": {"code": "no_verification", "message": "这个媒体服务没有核验功能"}}
        task = self.running.get(call.call_id)
        if task is not None and not task.done():
            return {"error": {"code": "check_running", "message": "核验正在进行中"}}
        await self._abort_stale(call.call_id)
        done = await self._attempts(call.call_id)
        if done >= MAX_ATTEMPTS:
            return {"error": {"code": "no_attempts_left",
                              "message": f"每次通话最多核验{MAX_ATTEMPTS}次，请人工核验"}}
        placed = await placed_call(self.hub.redis, call.call_id)
        terminal_id = placed.terminal_id if placed else ""
        attempt = Attempt(call, secrets.token_hex(12), done + 1, terminal_id, actor,
                          time.monotonic())
        async with self.hub.engine.begin() as conn:
            await conn.execute(insert(identity_checks).values(
                verification_id=attempt.verification_id, call_id=call.call_id,
                terminal_id=terminal_id, clerk=actor, attempt=attempt.number,
                state=IdentityState.RUNNING.value,
                thresholds=self._thresholds(), model_version=MODEL_VERSION))
        task = asyncio.create_task(self._run(attempt))
        self.running[call.call_id] = task
        task.add_done_callback(lambda _: self._forget(call.call_id, task))
        return {"verification_id": attempt.verification_id, "attempt": attempt.number,
                "attempts_left": MAX_ATTEMPTS - attempt.number}

    def _forget(self, call_id: str, task: asyncio.Task[None]) -> None:
        if self.running.get(call_id) is task:
            del self.running[call_id]

    async def _attempts(self, call_id: str) -> int:
        async with self.hub.engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(identity_checks).where(
                identity_checks.c.call_id == call_id))).scalar_one()
        return int(n)

    def adopted(self, call: Call) -> None:
        """A call now hosted here (first join, or taken over from a dead worker): an attempt
        its old worker left running ended there; both sides hear it, the retry runs here."""
        task = asyncio.create_task(self._abort_stale(call.call_id, call))
        self._adoptions.add(task)
        task.add_done_callback(self._adoptions.discard)

    async def _abort_stale(self, call_id: str, call: Call | None = None) -> None:
        """An attempt left running by a worker that died: it ended without a verdict."""
        c = identity_checks.c
        try:
            async with self.hub.engine.begin() as conn:
                stale = (await conn.execute(update(identity_checks).where(
                    c.call_id == call_id, c.state == IdentityState.RUNNING.value,
                ).values(state=IdentityState.ABORTED.value, reasons=[REASON_WORKER_LOST],
                         decided_at=datetime.now(UTC)).returning(
                    c.verification_id, c.attempt, c.terminal_id, c.clerk))).all()
        except Exception:
            log.exception("closing stale identity checks failed", extra={"call": call_id})
            return
        if call is None:
            return
        for row in stale:
            attempt = Attempt(call, row.verification_id, row.attempt, row.terminal_id,
                              row.clerk, time.monotonic())
            await self._tell_aborted(attempt, REASON_WORKER_LOST)

    def _thresholds(self) -> dict[str, float]:
        fm = self.hub.settings.face_match
        return {"pass_below": fm.pass_below, "fail_above": fm.fail_above,
                "small_portrait_fail_above": fm.small_portrait_fail_above,
                "small_portrait_px": fm.small_portrait_px}

    # --- the attempt ------------------------------------------------------------------

    async def _run(self, attempt: Attempt) -> None:
        reading: asyncio.Task[IdNumberReading] | None = None
        try:
            portrait, reading = await self._card(attempt)
            faces, liveness, counts = await self._face(attempt)
            await self._decide(attempt, portrait, reading, faces, liveness, counts)
        except CheckAborted as exc:
            await self._abort(attempt, exc.reason)
        except asyncio.CancelledError:
            reason = REASON_WORKER_LOST if self._stopping else REASON_STOPPED
            await asyncio.shield(self._abort(attempt, reason))
            raise
        except Exception:
            log.exception("identity check failed", extra={"call": attempt.call.call_id})
            await self._abort(attempt, "核验出错，请重试")
        finally:
            attempt.call.face_hook = None
            if reading is not None and not reading.done():
                reading.cancel()
            elif reading is not None and not reading.cancelled():
                reading.exception()  # retrieved: an attempt that stopped early left it unread

    async def _job(self, attempt: Attempt, fn: Callable[..., T], *args: Any,
                   quiet: bool = False) -> T:
        """A pool job; a full pool makes the check wait in line, for `queue_s` at most, then
        the attempt ends with the pool's reason (both sides hear it). While it waits both
        sides are told so (unless `quiet`: a job behind the step), then the step again."""
        give_up = time.monotonic() + self.times.queue_s
        waited = False
        while True:
            if self.hub.pool is None:
                raise CheckAborted("核验服务不可用")
            try:
                result: T = await self.hub.pool.run(fn, *args, timeout_s=self.times.job_s)
                if waited and not quiet and attempt.shown is not None:
                    await self._tell(attempt, attempt.shown)
                return result
            except PoolBusy as exc:
                if time.monotonic() > give_up:
                    raise CheckAborted(PoolBusy.message) from exc
                if not waited:
                    log.info("verification pool busy, the check waits in line",
                             extra={"call": attempt.call.call_id, "attempt": attempt.number})
                    if not quiet and attempt.shown is not None:
                        await self._tell(attempt, attempt.shown.model_copy(
                            update={"guidance": WAIT_TEXT, "waiting": True, "move": None}))
                waited = True
                await asyncio.sleep(self.times.busy_wait_s)
            except PoolTimeout as exc:
                raise CheckAborted(PoolTimeout.message) from exc

    async def _step(self, attempt: Attempt, step: str, prompt: str, guidance: str,
                    time_left: float | None, move: str | None = None, completed: int = 0,
                    moves: int = 0) -> None:
        msg = IdentityStep.model_validate(dict(
            call_id=attempt.call.call_id, verification_id=attempt.verification_id,
            attempt=attempt.number, step=step, prompt=prompt, guidance=guidance, move=move,
            completed=completed, moves=moves,
            time_left_s=None if time_left is None else round(max(time_left, 0.0), 1)))
        attempt.shown = msg
        await self._tell(attempt, msg)

    async def _tell(self, attempt: Attempt, msg: BaseModel, roles: Roles = EVERYONE) -> None:
        # The call's people now, and those of the start: a call that ended or a worker that
        # stops has no participants left, and they must still hear why the check stopped.
        people = {(p.participant_id, p.role) for p in attempt.call.participants.values()}
        if attempt.terminal_id:
            people.add((attempt.terminal_id, "terminal"))
        people.add((attempt.clerk, "clerk"))
        await tell(self.hub.redis, sorted(people), msg, roles)

    async def _card(self, attempt: Attempt
                    ) -> tuple[IdPortrait, asyncio.Task[IdNumberReading]]:
        today = datetime.now(UTC).date()
        config = self.hub.settings.face_match
        # A scan first, before anyone is asked to put the card down.
        scanned = await self._scanned_card(attempt, today, config)
        if scanned is not None:
            return scanned
        deadline = time.monotonic() + self.times.card_s
        await self._step(attempt, "card", PROMPT_CARD, GUIDANCE_TEXT[CardGuidance.NO_CARD],
                         self.times.card_s)
        last: CardGuidance | None = None
        steady_at: float | None = None
        while True:
            now = time.monotonic()
            if attempt.call.closed:
                raise CheckAborted(REASON_STOPPED)
            if now > deadline:
                raise CheckAborted(REASON_NO_CARD)
            frames = attempt.call.capture.snapshot()
            sample: CardSample | None = None
            if frames:
                image = await asyncio.to_thread(_rgb, frames[-1])
                sample = await self._job(attempt, card_sample, image, today, config, False)
                if sample.guidance != CardGuidance.NO_CARD and steady_at is None:
                    steady_at = now  # this sample saw the card: taken counts from here
                if sample.guidance == CardGuidance.TAKEN and sample.portrait is not None:
                    attempt.timings["card_taken_s"] = round(
                        time.monotonic() - (steady_at or now), 3)
                    log.info("identity card taken", extra={
                        "call": attempt.call.call_id, "attempt": attempt.number,
                        "card_taken_s": attempt.timings["card_taken_s"]})
                    await self._step(attempt, "card", PROMPT_CARD, GUIDANCE_TEXT[
                        CardGuidance.TAKEN], None)
                    await self._keep(attempt, "card", sample.card)
                    await self._keep(attempt, "portrait", sample.portrait.crop)
                    # The number is read while the applicant turns to the face camera.
                    number = asyncio.create_task(self._job(
                        attempt, read_id_number, sample.card, today, quiet=True))
                    return sample.portrait, number
                if sample.guidance != last:
                    last = sample.guidance
                    await self._step(attempt, "card", PROMPT_CARD, GUIDANCE_TEXT[last],
                                     deadline - time.monotonic())
            await asyncio.sleep(max(0.0, self.times.card_every_s - (time.monotonic() - now)))

    async def _scanned_card(self, attempt: Attempt, today: date, config: FaceMatchConfig
                            ) -> tuple[IdPortrait, asyncio.Task[IdNumberReading]] | None:
        """The card from an ID-card scan taken earlier in this call, if one shows its
        portrait: a full-resolution still gives a portrait several times the video's, and
        the applicant need not put the card down again. Reused scans of earlier visits are
        not taken: the card must have been in front of this call's camera."""
        c = document_scans.c
        async with self.hub.engine.connect() as conn:
            rows = (await conn.execute(select(c.scan_id, c.original_path).where(
                c.call_id == attempt.call.call_id, c.kind == "id_card",
                c.from_video.is_(False), c.reused_from.is_(None),
            ).order_by(c.created_at.desc()).limit(SCANNED_CARDS))).all()
        if not rows:
            return None
        await self._step(attempt, "card", PROMPT_CARD_SCAN, SCAN_READING_TEXT, None)
        root: Path = self.hub.settings.storage_root
        for row in rows:
            try:
                data = await asyncio.to_thread((root / row.original_path).read_bytes)
            except OSError:
                log.warning("an ID-card scan is not in storage", extra={
                    "call": attempt.call.call_id, "scan": row.scan_id})
                continue
            sample = await self._job(attempt, card_from_still, data, today, config)
            if sample.guidance != CardGuidance.TAKEN or sample.portrait is None:
                continue
            attempt.card_scan = row.scan_id
            log.info("identity card taken from a scan", extra={
                "call": attempt.call.call_id, "attempt": attempt.number, "scan": row.scan_id})
            await self._step(attempt, "card", PROMPT_CARD_SCAN,
                             GUIDANCE_TEXT[CardGuidance.TAKEN], None)
            await self._keep(attempt, "card", sample.card)
            await self._keep(attempt, "portrait", sample.portrait.crop)
            number = asyncio.create_task(self._job(
                attempt, read_id_number, sample.card, today, quiet=True))
            return sample.portrait, number
        return None

    async def _number(self, reading: asyncio.Task[IdNumberReading]) -> dict[str, Any]:
        try:
            return (await reading).as_dict()
        except CheckAborted as exc:  # the number is not worth the whole check
            return {"status": "unreadable", "number": None, "reason": exc.reason}

    async def _face(self, attempt: Attempt) -> tuple[list[LiveFace], LivenessVerdict,
                                                     dict[str, int]]:
        cfg = self.hub.settings.liveness
        challenge = new_challenge(random.Random(self._rng.random()), 2)
        session = LivenessSession(challenge, cfg)
        hook = FaceHook()
        attempt.call.face_hook = hook
        limit = cfg.timeout_s + self.times.face_extra_s
        started = time.monotonic()
        await self._step(attempt, "face", PROMPT_FACE, "请正对摄像头", cfg.timeout_s,
                         moves=len(challenge))
        faces: list[LiveFace] = []
        counts = {"one": 0, "several": 0, "none": 0}
        shown: tuple[str, int] = ("", -1)
        verdict: LivenessVerdict | None = None
        last_t = -1.0
        while verdict is None or verdict.status == "pending":
            now = time.monotonic()
            if attempt.call.closed:
                raise CheckAborted(REASON_STOPPED)
            if now - started > limit:
                verdict = session.finish()
                break
            latest = hook.latest
            if latest is None or latest[0] == last_t:
                await asyncio.sleep(0.03)
                continue
            last_t = latest[0]
            image = await asyncio.to_thread(_rgb, latest[1])
            encode = sum(f.encoding is not None for f in faces) < self.times.encode_frames
            sample: FaceSample = await self._job(attempt, face_sample, image, latest[0],
                                                 self.hub.settings.face_match, encode)
            n = sample.liveness.faces
            counts["one" if n == 1 else "several" if n > 1 else "none"] += 1
            faces.append(sample.live)
            if sample.live.encoding is not None:
                await self._keep(attempt, "live", image)
            verdict = session.feed(sample.liveness)
            if verdict.status == "pending":
                done = len(verdict.completed)
                if (verdict.prompt, done) != shown:
                    shown = (verdict.prompt, done)
                    log.info("identity prompt", extra={
                        "call": attempt.call.call_id, "attempt": attempt.number,
                        "prompt": verdict.prompt, "done": done, "faces": n,
                        "size": f"{image.shape[1]}x{image.shape[0]}"})
                    asked = session.moves  # a blink the eyes can't show becomes a head move
                    move = asked[done] if done < len(asked) else None
                    words = MOVE_WORDS.get(move or "", verdict.prompt) if verdict.prompt in \
                        PROMPTS.values() else verdict.prompt
                    await self._step(attempt, "face", PROMPT_FACE, words,
                                     cfg.timeout_s - verdict.elapsed_s,
                                     move if verdict.prompt in PROMPTS.values() else None,
                                     done, len(challenge))
            await asyncio.sleep(max(0.0, self.times.face_every_s - (time.monotonic() - now)))
        attempt.timings["challenge_end"] = time.monotonic()
        attempt.timings["liveness_s"] = round(time.monotonic() - started, 3)
        log.info("identity liveness ended", extra={
            "call": attempt.call.call_id, "attempt": attempt.number, "status": verdict.status,
            "reason": verdict.reason, "done": len(verdict.completed), "frames": counts})
        if counts["one"] + counts["several"] + counts["none"] == 0:
            raise CheckAborted(REASON_NO_FACE_FRAMES)
        return faces, verdict, {**counts, "challenge": session.moves,  # type: ignore[dict-item]
                                "blink_replaced": session.blink_replaced}

    async def _keep(self, attempt: Attempt, kind: str, image: RGB | None) -> None:
        """An evidence image under verification/<call>/, its SHA-256 on the record."""
        if image is None:
            return
        root: Path = self.hub.settings.storage_root
        n = len(attempt.evidence)
        relative = f"verification/{attempt.call.call_id}/{attempt.verification_id}-{n}-{kind}.jpg"

        def write() -> str:
            data = _jpeg(image)
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return hashlib.sha256(data).hexdigest()

        digest = await asyncio.to_thread(write)
        item = {"kind": kind, "path": relative, "sha256": digest}
        if kind in ("card", "portrait") and attempt.card_scan is not None:
            item["scan_id"] = attempt.card_scan  # cut from that scan's original
        attempt.evidence.append(item)

    async def _decide(self, attempt: Attempt, portrait: IdPortrait,
                      reading: asyncio.Task[IdNumberReading], faces: list[LiveFace],
                      liveness: LivenessVerdict, counts: dict[str, Any]) -> None:
        await self._step(attempt, "match", PROMPT_MATCH, "", None)
        number = await self._number(reading)
        # Frames that passed the gates after the encoding budget was spent are left out:
        # the match ranks only frames it can compare.
        usable = [f for f in faces if f.encoding is not None or not f.gated.ok]
        match = await asyncio.to_thread(decide_encoded, portrait, usable,
                                        self.hub.settings.face_match)
        verdict = combine(match, liveness, counts["one"], counts["several"])
        decided = VERDICTS[verdict.decision]
        log.info("identity decided", extra={
            "call": attempt.call.call_id, "attempt": attempt.number, "verdict": decided.value,
            "distance": None if match.distance is None else round(match.distance, 3),
            "number": number.get("status")})
        attempt.timings["verdict_after_challenge_s"] = round(
            time.monotonic() - attempt.timings.pop("challenge_end"), 3)
        attempt.timings["total_s"] = round(time.monotonic() - attempt.started, 3)
        live = {**liveness.to_dict(), "challenge": list(counts["challenge"]),
                "frames_one_face": counts["one"], "frames_several": counts["several"],
                "frames_no_face": counts["none"],
                "blink_replaced": counts["blink_replaced"]}
        id_number = number.get("number") if number.get("status") == "valid" else None
        pii = keys_for(self.hub.settings.pii_key_file, self.hub.settings.run_mode == "local")
        async with self.hub.engine.begin() as conn:
            await conn.execute(update(identity_checks).where(
                identity_checks.c.verification_id == attempt.verification_id).values(
                state=IdentityState.DECIDED.value, verdict=decided.value,
                reasons=verdict.reasons, distance=match.distance, match=match.to_dict(),
                challenge=list(counts["challenge"]), liveness=live,
                id_number_enc=pii.encrypt(id_number, "identity_checks") if id_number else None,
                id_number_masked=mask_id_number(id_number) if id_number else None,
                id_read={k: v for k, v in number.items() if k != "number"},
                evidence=attempt.evidence, timings=attempt.timings,
                decided_at=datetime.now(UTC)))
        # On the replay's time line and the supervisor's live calls.
        self.hub._note(attempt.call.call_id, CallEventKind.IDENTITY_CHECK, "clerk", {
            "verdict": decided.value, "attempt": attempt.number,
            "verification_id": attempt.verification_id})
        thresholds = {"pass_below": match.pass_below, "fail_above": match.fail_above}
        await self._tell(attempt, IdentityResult(
            call_id=attempt.call.call_id, verification_id=attempt.verification_id,
            attempt=attempt.number, attempts_left=MAX_ATTEMPTS - attempt.number,
            state="decided", verdict=decided.value,
            distance=None if match.distance is None else round(match.distance, 4),
            thresholds=thresholds, reasons=verdict.reasons, liveness=live,
            id_number=id_number, id_read_reason=str(number.get("reason") or ""),
            evidence=self._evidence_list(attempt), elapsed_s=attempt.timings["total_s"]),
            CLERKS)
        await self._tell(attempt, IdentityDone(
            call_id=attempt.call.call_id, verification_id=attempt.verification_id,
            finished=True, message=DONE_TEXT), frozenset({"terminal"}))

    def _evidence_list(self, attempt: Attempt) -> list[IdentityEvidence]:
        return [IdentityEvidence.model_validate(
            {"kind": e["kind"], "index": i, "scan_id": e.get("scan_id")})
                for i, e in enumerate(attempt.evidence)]

    async def _abort(self, attempt: Attempt, reason: str) -> None:
        log.info("identity attempt ended early", extra={
            "call": attempt.call.call_id, "attempt": attempt.number, "reason": reason})
        attempt.timings["total_s"] = round(time.monotonic() - attempt.started, 3)
        attempt.timings.pop("challenge_end", None)
        try:
            async with self.hub.engine.begin() as conn:
                await conn.execute(update(identity_checks).where(
                    identity_checks.c.verification_id == attempt.verification_id).values(
                    state=IdentityState.ABORTED.value, reasons=[reason],
                    evidence=attempt.evidence, timings=attempt.timings,
                    decided_at=datetime.now(UTC)))
            self.hub._note(attempt.call.call_id, CallEventKind.IDENTITY_CHECK, "clerk", {
                "verdict": "未完成", "attempt": attempt.number, "reason": reason,
                "verification_id": attempt.verification_id})
            await self._tell_aborted(attempt, reason)
        except Exception:
            log.exception("recording an aborted check failed",
                          extra={"call": attempt.call.call_id})

    async def _tell_aborted(self, attempt: Attempt, reason: str) -> None:
        await self._tell(attempt, IdentityResult(
            call_id=attempt.call.call_id, verification_id=attempt.verification_id,
            attempt=attempt.number, attempts_left=MAX_ATTEMPTS - attempt.number,
            state="aborted", verdict=None, distance=None, thresholds={},
            reasons=[reason], liveness={}, id_number=None, id_read_reason="",
            evidence=self._evidence_list(attempt),
            elapsed_s=attempt.timings.get("total_s", 0.0)), CLERKS)
        await self._tell(attempt, IdentityDone(
            call_id=attempt.call.call_id, verification_id=attempt.verification_id,
            finished=False, message=reason), frozenset({"terminal"}))

    async def close(self) -> None:
        """The worker stops: every running check ends, and both sides hear why."""
        self._stopping = True
        tasks = list(self.running.values()) + list(self._adoptions)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

