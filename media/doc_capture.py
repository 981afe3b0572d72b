"""The capture panel of one call on the worker: guidance while it is open, stills, scans.

While the clerk has the panel open, the latest document-camera frame of the call's
`CaptureBuffer` is sampled a few times a second and judged in the verification pool (a
picture that keeps moving at most every `GuidanceRules.moving_gap_s`); the pure
`verify.doc_guidance.decide` turns the verdicts into words for the clerk and the kiosk and
says when to take the page itself. A page is a full-resolution still the kiosk uploads with
its own join token (or, when its camera gives no more than the video, the latest video
frame, marked "from video"); it is checked against the live view, flattened, and stored with
both hashes. Nothing here runs when no panel is open."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from av import VideoFrame
from numpy.typing import NDArray
from pydantic import BaseModel
from sqlalchemy import insert

from core.document_tables import document_scans
from core.media_tables import scans
from core.messages import DocGuidance, DocPanelClosed, DocScanResult, DocTakeStill
from media.call import Call
from media.doc_capture_jobs import FrameSample, StillCheck, check_still, image_format, sample_frame
from media.frames import pixels
from media.hub import Hub, HubError
from media.notices import EVERYONE, tell
from verify import doc_guidance as guide

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_STILL_BYTES = 16 * 1024 * 1024
SAMPLE_EVERY_S = 0.2  # a few frames a second, only while a panel is open
THUMB = (64, 36)  # the tiny grey copy that tells whether anything moved
UNCHANGED_GREY = 2.5  # mean difference (grey levels) below which nothing moved
REPEAT_NOTICE_S = 1.0  # the same words again at most this often (a page that reconnects)
SAMPLE_TIMEOUT_S = 5.0
STILL_TIMEOUT_S = 20.0
TAKE_VALID_S = 15.0  # a still answers a take this long after it was asked for
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass
class Take:
    take_id: str
    taken_by: str  # the clerk, or "auto"
    material_code: str
    material_name: str
    page: int
    asked_at: float


@dataclass
class Panel:
    call_id: str
    opened_by: str
    material_code: str
    material_name: str
    page: int
    auto: bool
    history: list[guide.Sample] = field(default_factory=list)
    last_taken_at: float | None = None
    take: Take | None = None
    task: asyncio.Task[None] | None = None
    last_notice: tuple[str, bool, tuple[float, ...] | None] | None = None
    last_notice_at: float = 0.0
    sampled: int = 0  # frames judged in the pool (the others were unchanged)
    thumb: NDArray[np.uint8] | None = None  # of the last judged frame
    judged_at: float | None = None
    moving: bool = False  # the last sampled frame had moved since the last judged one
    unjudged: bool = False  # the latest frame moved and waits for its verdict: no auto-take
    page_kept: bool = False  # this page has its still: no auto-take again until 下一页


class PanelRequest(BaseModel):
    open: bool
    material_code: str = "other"
    material_name: str = "其他材料"
    page: int = 1
    auto: bool = False


def _clean(text: str, limit: int) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:limit].strip()


class DocCapture:
    """The open capture panels of this worker's calls (at most one per call)."""

    def __init__(self, hub: Hub, clock: Callable[[], float] = time.time,
                 rules: guide.GuidanceRules | None = None) -> None:
        self.hub = hub
        self.clock = clock
        self.rules = rules or guide.GuidanceRules()
        self.panels: dict[str, Panel] = {}
        self._taken: dict[str, int] = {}  # stills stored per call (bounded)

    async def _run(self, fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
        """In the verification pool when the worker has one, else in a thread."""
        if self.hub.pool is not None:
            return await self.hub.pool.run(fn, *args, timeout_s=timeout_s)
        async with asyncio.timeout(timeout_s):
            return await asyncio.to_thread(fn, *args)

    def _call(self, call_id: str) -> Call:
        call = self.hub.calls.get(call_id)
        if call is None:
            raise HubError(404, "no_call", "通话不存在或已结束")
        return call

    # --- the panel ----------------------------------------------------------------------

    async def set_panel(self, call_id: str, clerk: str, req: PanelRequest) -> dict[str, Any]:
        call = self._call(call_id)
        panel = self.panels.get(call_id)
        if not req.open:
            await self.close(call_id)
            return {"open": False}
        code = _clean(req.material_code, 32) or "other"
        name = _clean(req.material_name, 32) or "其他材料"
        page = max(1, min(req.page, 99))
        if panel is None:
            panel = Panel(call_id, clerk, code, name, page, req.auto)
            self.panels[call_id] = panel
            panel.task = asyncio.create_task(self._guide(call, panel))
        else:
            if (code, page) != (panel.material_code, panel.page):
                panel.history.clear()  # another page: steady again before an auto-take
                panel.page_kept = False
            panel.material_code, panel.material_name, panel.page = code, name, page
            panel.auto = req.auto
        return {"open": True, "material_code": code, "material_name": name, "page": page,
                "auto": panel.auto}

    async def close(self, call_id: str) -> None:
        panel = self.panels.pop(call_id, None)
        if panel is None:
            return
        if panel.task is not None:
            panel.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await panel.task
        call = self.hub.calls.get(call_id)
        if call is not None:
            await self._tell(call, DocPanelClosed(call_id=call_id))

    async def stop(self) -> None:
        for call_id in list(self.panels):
            await self.close(call_id)

    async def _tell(self, call: Call, message: BaseModel,
                    roles: frozenset[str] = EVERYONE) -> None:
        members = [(p.participant_id, p.role) for p in call.participants.values()]
        await tell(self.hub.redis, members, message, roles)

    async def _guide(self, call: Call, panel: Panel) -> None:
        """Sample, judge, tell, maybe take: until the panel closes or the call ends."""
        last_frame: object = None
        every = SAMPLE_EVERY_S
        while self.hub.calls.get(call.call_id) is call and not call.closed:
            started = time.monotonic()
            try:
                last_frame, decided = await self._sample(call, panel, last_frame)
                every = guide.next_sample_in(decided, SAMPLE_EVERY_S, self.rules)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad frame or a busy pool must not end the guidance
                log.exception("document guidance sample failed", extra={"call": call.call_id})
                every = SAMPLE_EVERY_S
            await asyncio.sleep(max(0.03, every - (time.monotonic() - started)))
        self.panels.pop(call.call_id, None)  # the call ended: nothing of it is kept here
        self._taken.pop(call.call_id, None)

    async def _sample(self, call: Call, panel: Panel,
                      last_frame: object) -> tuple[object, guide.Guidance]:
        latest = call.capture.latest()
        arrived, frame = latest if latest is not None else (None, None)
        now = self.clock()
        if frame is not None and frame is not last_frame:
            thumb = await asyncio.to_thread(thumb_of, frame)
            previous = panel.history[-1] if panel.history else None
            moved = previous is None or panel.thumb is None or not unchanged(panel.thumb, thumb)
            if not moved and previous is not None:
                # Nothing moved: the same verdict, without judging the frame again.
                sample: FrameSample | None = FrameSample(previous.verdict, previous.outline,
                                                         previous.shift)
            elif guide.judge_now(moved, panel.moving, panel.judged_at, now, self.rules):
                bgr = await asyncio.to_thread(bgr_of, frame)
                sample = await self._run(sample_frame, bgr, self.hub.settings.document,
                                         timeout_s=SAMPLE_TIMEOUT_S)
                panel.sampled += 1
                panel.thumb, panel.judged_at = thumb, now
            else:
                sample = None  # still moving: judged again within `moving_gap_s`
            panel.moving, panel.unjudged = moved, sample is None
            if sample is not None:
                panel.history.append(guide.Sample(now, sample.verdict, sample.outline,
                                                  sample.shift))
            panel.history = guide.trim(panel.history, now)
        decided = guide.decide(panel.history, self.clock(),
                               auto=panel.auto and not panel.page_kept and not panel.unjudged,
                               last_taken_at=panel.last_taken_at, rules=self.rules)
        await self._notify(call, panel, decided, now if arrived is None else arrived)
        if decided.take:
            await self.ask_take(call.call_id, "auto")
        return frame, decided

    async def _notify(self, call: Call, panel: Panel, g: guide.Guidance, frame_at: float) -> None:
        key = (g.words, g.ready, g.outline)
        if key == panel.last_notice and self.clock() - panel.last_notice_at < REPEAT_NOTICE_S:
            return
        panel.last_notice, panel.last_notice_at = key, self.clock()
        await self._tell(call, DocGuidance(
            call_id=call.call_id, material_name=panel.material_name, page=panel.page,
            verdict=g.verdict.value, words=g.words, kiosk_words=g.kiosk_words,
            outline=list(g.outline) if g.outline is not None else None, ready=g.ready,
            auto=panel.auto, frame_at=frame_at))

    async def ask_take(self, call_id: str, taken_by: str) -> dict[str, Any]:
        """Ask the kiosk for a still of the current material and page."""
        call = self._call(call_id)
        panel = self.panels.get(call_id)
        if panel is None:
            raise HubError(409, "no_panel", "请先打开拍材料")
        now = self.clock()
        panel.take = Take(secrets.token_hex(8), taken_by, panel.material_code,
                          panel.material_name, panel.page, now)
        panel.last_taken_at = now
        await self._tell(call, DocTakeStill(
            call_id=call_id, take_id=panel.take.take_id, material_name=panel.material_name,
            page=panel.page, reason="auto" if taken_by == "auto" else "clerk"))
        return {"take_id": panel.take.take_id}

    # --- stills -------------------------------------------------------------------------

    def _take_for(self, call_id: str, take_id: str | None) -> Take:
        panel = self.panels.get(call_id)
        if panel is None:
            raise HubError(409, "no_panel", "拍材料没有打开")
        take = panel.take
        fresh = take is not None and self.clock() - take.asked_at <= TAKE_VALID_S
        if take is None or not fresh or (take_id is not None and take_id != take.take_id):
            raise HubError(409, "no_take", "现在没有要拍的材料，请等工作人员点「拍照」")
        return take

    async def upload_still(self, call_id: str, uploader: str, data: bytes,
                           take_id: str | None) -> dict[str, Any]:
        """A still from a participant: checked against the live view, stored when good."""
        call = self._call(call_id)
        take = self._take_for(call_id, take_id)
        if image_format(data) is None:
            raise HubError(415, "not_image", "上传的不是照片（只收 JPEG、PNG、WebP）")
        live = await self._latest_bgr(call)
        check: StillCheck = await self._run(check_still, data, live, self.hub.settings.document,
                                            False, timeout_s=STILL_TIMEOUT_S)
        return await self._finish(call, take, uploader, data, check, from_video=False)

    async def video_frame(self, call_id: str, uploader: str,
                          take_id: str | None) -> dict[str, Any]:
        """The camera gives no more than the video: the latest video frame is the page."""
        call = self._call(call_id)
        take = self._take_for(call_id, take_id)
        live = await self._latest_bgr(call)
        if live is None:
            raise HubError(409, "no_document_frames", "还没有收到材料摄像头的画面")
        data = await asyncio.to_thread(_png, live)
        check: StillCheck = await self._run(check_still, data, None, self.hub.settings.document,
                                            True, timeout_s=STILL_TIMEOUT_S)
        return await self._finish(call, take, uploader, data, check, from_video=True)

    async def _latest_bgr(self, call: Call) -> NDArray[np.uint8] | None:
        frames = call.capture.snapshot()
        if not frames:
            return None
        return await asyncio.to_thread(bgr_of, frames[-1])

    async def _finish(self, call: Call, take: Take, uploader: str, data: bytes,
                      check: StillCheck, *, from_video: bool) -> dict[str, Any]:
        scan_id: str | None = None
        if check.accepted:
            scan_id = await self._store(call, take, uploader, data, check, from_video)
            panel = self.panels.get(call.call_id)
            if panel is not None and panel.take is take:
                panel.take = None  # one still per take: a second one needs a new 拍照
                panel.page_kept = (take.material_code, take.page) == (panel.material_code,
                                                                      panel.page)
        result = DocScanResult(
            call_id=call.call_id, take_id=take.take_id, accepted=check.accepted,
            code=check.code, words=check.reason, material_code=take.material_code,
            material_name=take.material_name, page=take.page, scan_id=scan_id,
            verdict=check.verdict, flat_width=check.flat_width,
            flat_height=check.flat_height, from_video=from_video)
        await self._tell(call, result)
        body = result.model_dump(mode="json")
        if scan_id is not None:
            body["page_url"] = (f"{self.hub.settings.media_url}/calls/{call.call_id}/documents/"
                                f"{scan_id}/page")
        body["similarity"] = None if check.similarity != check.similarity else round(
            check.similarity, 3)
        return body

    async def _store(self, call: Call, take: Take, uploader: str, data: bytes,
                     check: StillCheck, from_video: bool) -> str:
        taken = self._taken.get(call.call_id, 0)
        if taken >= self.hub.settings.media_max_captures:
            raise HubError(429, "too_many_captures", "这次通话拍的材料已经太多了")
        self._taken[call.call_id] = taken + 1
        scan_id = secrets.token_hex(12)
        root = self.hub.settings.storage_root
        folder = root / "scans" / call.call_id
        ext = EXTENSIONS.get(image_format(data) or "PNG", "png")
        original = folder / f"{scan_id}.original.{ext}"
        flat = folder / f"{scan_id}.flat.jpg"
        thumb = folder / f"{scan_id}.thumb.jpg"

        def write() -> tuple[str, str]:
            folder.mkdir(parents=True, exist_ok=True)
            original.write_bytes(data)
            flat.write_bytes(check.flat_jpeg)
            thumb.write_bytes(check.thumb_jpeg)
            return hashlib.sha256(data).hexdigest(), hashlib.sha256(check.flat_jpeg).hexdigest()

        original_sha, flat_sha = await asyncio.to_thread(write)
        terminal = next((p.participant_id for p in call.participants.values()
                         if p.role == "terminal"), "")
        async with self.hub.engine.begin() as conn:
            await conn.execute(insert(scans).values(
                scan_id=scan_id, call_id=call.call_id, taken_by=take.taken_by,
                path=str(flat.relative_to(root)), thumb_path=str(thumb.relative_to(root)),
                sha256=flat_sha, width=check.flat_width, height=check.flat_height,
                sharpness=0.0 if check.sharpness != check.sharpness else check.sharpness))
            await conn.execute(insert(document_scans).values(
                scan_id=scan_id, call_id=call.call_id, terminal_id=terminal,
                material_code=take.material_code, material_name=take.material_name,
                page=take.page, taken_by=take.taken_by, uploaded_by=uploader,
                original_path=str(original.relative_to(root)), original_sha256=original_sha,
                flat_path=str(flat.relative_to(root)), flat_sha256=flat_sha,
                source_width=check.width, source_height=check.height,
                flat_width=check.flat_width, flat_height=check.flat_height,
                source_dpi=None if check.source_dpi != check.source_dpi else check.source_dpi,
                kind=check.kind or "a4", verdict=check.verdict,
                similarity=None if from_video else check.similarity, from_video=from_video))
        return scan_id


def bgr_of(frame: VideoFrame) -> NDArray[np.uint8]:
    return pixels(frame, "bgr24")


def thumb_of(frame: VideoFrame) -> NDArray[np.uint8]:
    return pixels(frame, "gray", THUMB[0], THUMB[1])


def unchanged(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> bool:
    """Camera noise, not a moved page (compression and sensor noise stay well below)."""
    return a.shape == b.shape and float(
        np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)))) < UNCHANGED_GREY


def _png(image: NDArray[np.uint8]) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return bytes(data)

