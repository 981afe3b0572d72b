"""The image work of the capture panel, run in the verification pool (picklable, no I/O).

`check_still`: decode an uploaded still, find and flatten the page, judge its quality and
compare it with the live view the worker sees, so a kiosk cannot slip in another picture.
`sample_frame`: the verdict and outline of one sampled live frame for the guidance.
Imports only `verify` and image libraries, so the pool's spawned processes stay light.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from verify.doc_guidance import GuidanceVerdict, Outline, shift_hint
from verify.document_config import DocumentThresholds
from verify.document_detect import (
    KIND_DPI,
    KIND_SIZE_MM,
    DetectedDocument,
    DocumentKind,
    detect_document,
    scan_size,
    source_dpi,
    warp_document,
)
from verify.document_quality import REASONS, assess

MAX_PIXELS = 40_000_000  # a 40 MP still is more than any document camera gives
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
HIGH_RES_SHORT_SIDE = 1080  # from 1080p on, an A4 page is flattened at HIGH_RES_A4_DPI
HIGH_RES_A4_DPI = 200  # 1654 px across
MIN_MATCH = 0.85  # tiled correlation of the two small flattened pages (same ≥ 0.94 here)
THUMB_WIDTH = 240
_COMPARE = (120, 170)
_TILES = (4, 6)
_BLANK = 0.3  # the small flattened page the comparison runs on (w, h), portrait


@dataclass(frozen=True)
class StillCheck:
    """What the worker decided about one still; the files to store when accepted."""

    accepted: bool
    code: str  # "accepted" | "not_image" | "too_many_pixels" | "no_document" | "not_live" ...
    reason: str  # plain words for the clerk
    verdict: str  # the quality verdict of the page ("ok" or a defect)
    width: int = 0
    height: int = 0
    kind: str | None = None
    similarity: float = math.nan
    source_dpi: float = math.nan
    flat_jpeg: bytes = b""
    flat_width: int = 0
    flat_height: int = 0
    thumb_jpeg: bytes = b""
    outline: Outline | None = None
    sharpness: float = math.nan


@dataclass(frozen=True)
class FrameSample:
    verdict: GuidanceVerdict
    outline: Outline | None
    shift: str | None


def image_format(data: bytes) -> str | None:
    """JPEG / PNG / WEBP by the file's own header, else None (never by the declared type)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _outline(doc: DetectedDocument) -> Outline:
    w, h = doc.frame_size
    return tuple(round(float(v), 4) for xy in doc.corners for v in (xy[0] / w, xy[1] / h))


def _small_page(frame: NDArray[np.uint8], doc: DetectedDocument) -> NDArray[np.float32]:
    """The page flattened to a small portrait grey image, zero mean and unit variance."""
    mm_w, mm_h = KIND_SIZE_MM[doc.kind]
    size = _COMPARE if mm_h >= mm_w else (_COMPARE[1], _COMPARE[0])
    flat = warp_document(frame, doc.corners, size)
    gray = cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if size != _COMPARE:
        gray = np.ascontiguousarray(np.rot90(gray))
    return _normalized(gray)


def _normalized(gray: NDArray[np.float32]) -> NDArray[np.float32]:
    # Band-pass: the layout of two forms alike is left out, their text lines kept.
    gray = np.asarray(cv2.GaussianBlur(gray, (0, 0), 1.0) - cv2.GaussianBlur(gray, (0, 0), 3.0),
                      np.float32)
    return np.asarray((gray - gray.mean()) / (gray.std() + 1e-6), np.float32)


def _whole(frame: NDArray[np.uint8], aspect: float) -> NDArray[np.float32]:
    """The frame centre-cropped to `aspect` (w/h), small, grey, normalized."""
    h, w = frame.shape[:2]
    if w / h > aspect:
        cw = round(h * aspect)
        frame = frame[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = round(w / aspect)
        frame = frame[(h - ch) // 2:(h - ch) // 2 + ch]
    small = cv2.resize(frame, (160, max(24, round(160 / aspect))), interpolation=cv2.INTER_AREA)
    return _normalized(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32))


def tiled_correlation(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """A low quartile of per-tile correlations: two filled-in copies of one form share the
    table and the stamp, not the writing, so the tiles with the writing decide."""
    h, w = a.shape
    scores: list[float] = []
    for y in range(_TILES[1]):
        for x in range(_TILES[0]):
            rows = slice(y * h // _TILES[1], (y + 1) * h // _TILES[1])
            cols = slice(x * w // _TILES[0], (x + 1) * w // _TILES[0])
            ta, tb = a[rows, cols], b[rows, cols]
            if ta.std() < _BLANK and tb.std() < _BLANK:
                continue  # blank paper in both says nothing
            ta = (ta - ta.mean()) / (ta.std() + 1e-6)
            tb = (tb - tb.mean()) / (tb.std() + 1e-6)
            scores.append(float(np.mean(ta * tb)))
    return float(np.percentile(scores, 25)) if scores else 0.0


def similarity(still: NDArray[np.uint8], still_doc: DetectedDocument | None,
               live: NDArray[np.uint8]) -> float:
    """How alike the still and the live view are: the flattened pages when the live frame
    shows one too, else the whole frames (1.0 = the same)."""
    live_doc = detect_document(live)
    if still_doc is not None and live_doc is not None:
        a, b = _small_page(still, still_doc), _small_page(live, live_doc)
        # The outline's corner order may differ by a half turn between the two detections.
        return max(tiled_correlation(a, b),
                   tiled_correlation(a, np.ascontiguousarray(np.rot90(b, 2))))
    aspect = live.shape[1] / live.shape[0]
    return tiled_correlation(_whole(still, aspect), _whole(live, aspect))


def flat_dpi(kind: DocumentKind, short_side: int) -> int:
    """The scan resolution: the kind's own, and more for A4 from a 1080p still on."""
    if kind == "a4" and short_side >= HIGH_RES_SHORT_SIDE:
        return HIGH_RES_A4_DPI
    return KIND_DPI[kind]


def _jpeg(image: NDArray[np.uint8], quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(data)


def decode_still(data: bytes) -> tuple[NDArray[np.uint8] | None, str, str]:
    """(BGR image or None, refusal code, refusal words)."""
    fmt = image_format(data)
    if fmt is None:
        return None, "not_image", "上传的不是照片（只收 JPEG、PNG、WebP）"
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
            if probe.format not in IMAGE_FORMATS:
                return None, "not_image", "上传的不是照片（只收 JPEG、PNG、WebP）"
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, "not_image", "照片无法读取"
    if w * h > MAX_PIXELS:
        return None, "too_many_pixels", "照片像素太多"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "not_image", "照片无法读取"
    return np.asarray(image, np.uint8), "", ""


def check_still(data: bytes, live: NDArray[np.uint8] | None, th: DocumentThresholds,
                from_video: bool = False) -> StillCheck:
    """Decode, detect, judge, compare with the live view, flatten (in a pool process)."""
    image, code, words = decode_still(data)
    if image is None:
        return StillCheck(False, code, words, "not_found")
    h, w = image.shape[:2]
    doc = detect_document(image)
    verdict = assess(image, doc, th)
    if doc is None or verdict.verdict == "not_found":
        return StillCheck(False, "no_document", "没有找到材料", "not_found", width=w, height=h)
    base = StillCheck(False, "", "", verdict.verdict, width=w, height=h, kind=doc.kind,
                      outline=_outline(doc), source_dpi=source_dpi(doc),
                      sharpness=verdict.measures.sharpness)
    sim = 1.0 if from_video else (similarity(image, doc, live) if live is not None else math.nan)
    if not from_video and (live is None or not sim >= MIN_MATCH):
        reason = ("还没有收到材料摄像头的画面，无法核对" if live is None
                  else "照片和视频里看到的材料不一致，请重拍")
        return replace(base, code="not_live", reason=reason, similarity=sim)
    flat = warp_document(image, doc.corners, scan_size(doc.kind, flat_dpi(doc.kind, min(w, h))))
    thumb_size = (THUMB_WIDTH, round(THUMB_WIDTH * flat.shape[0] / flat.shape[1]))
    thumb = np.asarray(cv2.resize(flat, thumb_size,
                       interpolation=cv2.INTER_AREA), np.uint8)
    words = "拍好了" if verdict.ok else REASONS[verdict.defects[0]]
    return replace(base, accepted=True, code="accepted", reason=words, similarity=sim,
                   flat_jpeg=_jpeg(flat, 92), flat_width=int(flat.shape[1]),
                   flat_height=int(flat.shape[0]), thumb_jpeg=_jpeg(thumb, 85))


def sample_frame(frame: NDArray[np.uint8], th: DocumentThresholds) -> FrameSample:
    """The guidance verdict of one live frame (BGR)."""
    doc = detect_document(frame)
    verdict = assess(frame, doc, th)
    v = GuidanceVerdict(verdict.verdict)
    # an outlined region judged no document is not drawn (a wrong outline misleads)
    outline = _outline(doc) if doc is not None and v is not GuidanceVerdict.NOT_FOUND else None
    return FrameSample(v, outline, shift_hint(outline) if outline is not None else None)
