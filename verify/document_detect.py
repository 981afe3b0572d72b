"""Finding a document in a camera frame and flattening it to a scan.

The quadrilateral is found on a downscaled copy (bright region or closed edge contour
whose convex hull is four-cornered), then each side is re-fitted at full resolution
from the strongest dark-to-bright step across it, and the corners are the intersections
of the fitted sides. Kinds are told apart by aspect ratio and orientation: an ID-1 card
is 85.6x54 mm; an A4 page (held portrait) and a booklet page (125x88 mm, held landscape)
have nearly the same aspect, so orientation decides between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

DocumentKind = Literal["a4", "id_card", "booklet"]

# long side / short side of each kind
KIND_ASPECT: dict[DocumentKind, float] = {
    "a4": 297 / 210,
    "id_card": 85.6 / 54,
    "booklet": 125 / 88,
}
# (width, height) of the flat scan in millimetres, in the orientation it is read
KIND_SIZE_MM: dict[DocumentKind, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "id_card": (85.6, 54.0),
    "booklet": (125.0, 88.0),
}
# scan resolution: 150 dpi is the floor for a readable page; cards get more for the OCR
KIND_DPI: dict[DocumentKind, int] = {"a4": 150, "id_card": 300, "booklet": 200}

_DETECT_WIDTH = 480  # the downscaled copy the coarse search runs on
_MIN_AREA = 0.005  # smallest region considered, as a share of the frame
_MAX_AREA = 0.9
_CARD_SPLIT = 1.5  # aspect between A4/booklet (1.41) and ID-1 (1.585)

Quad = NDArray[np.float64]  # 4x2: top-left, top-right, bottom-right, bottom-left


@dataclass(frozen=True)
class DetectedDocument:
    """The document found in a frame, in full-resolution frame pixels."""

    corners: Quad
    kind: DocumentKind
    area_fraction: float  # document area / frame area
    touches_edge: bool  # the region reaches the frame border (part of it is outside)
    edge_spread_px: float  # median width of the border step: how blurred the frame is
    frame_size: tuple[int, int]  # (width, height)


def _signed_area(q: Quad) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _side_lengths(q: Quad) -> NDArray[np.float64]:
    return np.asarray(np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1), np.float64)


def classify_kind(q: Quad) -> DocumentKind:
    """Kind from the (perspective-averaged) aspect ratio and which way the long side runs."""
    s = _side_lengths(q)
    a, b = s[0] + s[2], s[1] + s[3]
    if max(a, b) / max(min(a, b), 1e-6) >= _CARD_SPLIT:
        return "id_card"
    horizontal = np.roll(q, -1, axis=0) - q  # side vectors
    long_idx = 0 if a >= b else 1
    v = horizontal[long_idx] + -horizontal[long_idx + 2]
    return "booklet" if abs(v[0]) >= abs(v[1]) else "a4"


def order_corners(q: Quad, kind: DocumentKind) -> Quad:
    """Clockwise from the top-left of the document as it is read (A4 portrait, others landscape)."""
    q = np.asarray(q, dtype=np.float64)
    if _signed_area(q) < 0:
        q = q[::-1]
    s = _side_lengths(q)
    want_long_top = kind != "a4"
    first_is_long = s[0] + s[2] >= s[1] + s[3]
    start = 0 if first_is_long == want_long_top else 1
    # of the two starts giving that orientation, take the one whose top side is higher
    mids = [(q[i][1] + q[(i + 1) % 4][1]) / 2 for i in (start, start + 2)]
    if mids[1] < mids[0]:
        start += 2
    return np.roll(q, -start, axis=0)


def _quad_from_contour(c: NDArray[np.int32]) -> NDArray[np.float64] | None:
    hull = cv2.convexHull(c)
    peri = cv2.arcLength(hull, True)
    for eps in (0.02, 0.03, 0.045, 0.06):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float64)
        if len(approx) < 4:
            return None
    return None


def _quad_from_lines(c: NDArray[np.int32]) -> NDArray[np.float64] | None:
    """Four sides from the longest straight runs of a contour, for a document that touches
    clutter: the bump the clutter adds is short, the document's sides are long."""
    peri = cv2.arcLength(c, True)
    poly = cv2.approxPolyDP(c, 0.006 * peri, True).reshape(-1, 2).astype(np.float64)
    if len(poly) < 4:
        return None
    seg = np.roll(poly, -1, axis=0) - poly
    lengths = np.linalg.norm(seg, axis=1)
    groups: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]] = []  # len, point, dir
    for i in np.argsort(-lengths):
        if lengths[i] < 0.04 * peri:
            break
        d = seg[i] / lengths[i]
        mid = poly[i] + seg[i] / 2
        for g, (glen, gp, gd) in enumerate(groups):
            n = np.array([-gd[1], gd[0]])
            if abs(float(d @ gd)) > 0.985 and abs(float((mid - gp) @ n)) < 0.01 * peri:
                groups[g] = (glen + float(lengths[i]), gp, gd)
                break
        else:
            groups.append((float(lengths[i]), mid, d))
    if len(groups) < 4:
        return None
    sides = sorted(groups, key=lambda g: -g[0])[:4]
    centre = poly.mean(axis=0)
    sides.sort(key=lambda g: math.atan2(g[1][1] - centre[1], g[1][0] - centre[0]))
    out = np.empty((4, 2))
    for i in range(4):
        p = _intersect((sides[i - 1][1], sides[i - 1][2]), (sides[i][1], sides[i][2]))
        if p is None:
            return None
        out[i] = p
    return out


def _candidates(frame_small: NDArray[np.uint8], gray: NDArray[np.uint8]) -> list[NDArray[np.int32]]:
    """Contours that may outline the document: bright regions (and bright, unsaturated
    ones, which leaves out coloured clutter), then closed edge loops."""
    blur = cv2.GaussianBlur(gray, (5, 5), 0)
    _, bright = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    masks = [bright]
    if frame_small.ndim == 3:
        sat = cv2.cvtColor(frame_small, cv2.COLOR_BGR2HSV)[:, :, 1]
        pale = cv2.bitwise_and(bright, (sat < 70).astype(np.uint8) * 255)
        masks.append(cv2.morphologyEx(pale, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))
    med = float(np.median(blur))
    edges = cv2.Canny(blur, max(5.0, 0.5 * med), max(15.0, 1.2 * med))
    masks.append(cv2.dilate(edges, np.ones((3, 3), np.uint8)))
    out: list[NDArray[np.int32]] = []
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        out.extend(np.asarray(c, np.int32) for c in contours)
    return out


def _touches(c: NDArray[np.int32], w: int, h: int) -> bool:
    x, y, cw, ch = cv2.boundingRect(c)
    return x <= 1 or y <= 1 or x + cw >= w - 1 or y + ch >= h - 1


def _edge_support(gray: NDArray[np.float32], poly: NDArray[np.float64], weakest: bool) -> float:
    """Share of points along the weakest side (or along the whole outline, length-weighted)
    where the inside is brighter than the outside.

    `poly` is clockwise; sides lying along the frame border (a cut-off document) are skipped.
    """
    h, w = gray.shape
    ts = np.linspace(0.08, 0.92, 20)
    offs = np.array([-3.0, -2.0, 2.0, 3.0])
    worst, total, weight = 1.0, 0.0, 0.0
    for i in range(len(poly)):
        p0, p1 = poly[i], poly[(i + 1) % len(poly)]
        d = p1 - p0
        length = float(np.linalg.norm(d))
        if length < 4:
            continue
        mids = p0 + ts[:, None] * d
        inner = (mids[:, 0] > 3) & (mids[:, 0] < w - 4) & (mids[:, 1] > 3) & (mids[:, 1] < h - 4)
        if inner.sum() < 5:
            continue
        n = np.array([-d[1], d[0]]) / length
        pts = mids[inner][:, None, :] + offs[None, :, None] * n
        prof = cv2.remap(
            gray,
            pts[..., 0].astype(np.float32),
            pts[..., 1].astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        step = prof[:, 2:].mean(axis=1) - prof[:, :2].mean(axis=1)
        share = float(np.mean(step > 6.0))
        worst = min(worst, share)
        total += share * length
        weight += length
    if weight == 0:
        return 0.0
    return worst if weakest else total / weight


def _outline(c: NDArray[np.int32]) -> NDArray[np.float64]:
    """The clockwise polygon around a region (for a cut-off document: its visible part)."""
    hull = cv2.convexHull(c)
    poly = cv2.approxPolyDP(hull, 0.01 * cv2.arcLength(hull, True), True)
    out = poly.reshape(-1, 2).astype(np.float64)
    return out[::-1] if _signed_area(out) < 0 else out


def _coarse(frame_small: NDArray[np.uint8], gray: NDArray[np.uint8]) -> tuple[Quad, bool] | None:
    """Best four-cornered region on the small image, and whether it reaches the border."""
    h, w = gray.shape
    frame_area = float(w * h)
    best: tuple[float, Quad, bool] | None = None
    grayf = gray.astype(np.float32)
    for c in _candidates(frame_small, gray):
        area = cv2.contourArea(c)
        if area < _MIN_AREA * frame_area:
            continue
        touches = _touches(c, w, h)
        quads = [q for q in (_quad_from_contour(c), _quad_from_lines(c)) if q is not None]
        if not quads and touches:
            # cut off: the visible part is not four-cornered; keep its bounding box
            quads = [cv2.boxPoints(cv2.minAreaRect(c)).astype(np.float64)]
        for quad in quads:
            qarea = abs(_signed_area(quad))
            fill = area / max(qarea, 1.0)
            if qarea > _MAX_AREA * frame_area:
                continue  # the whole view washed out, not a document
            if not 0.8 < fill < 1.25 or not cv2.isContourConvex(quad.astype(np.float32)):
                continue
            if _signed_area(quad) < 0:
                quad = quad[::-1]
            # every side must be a real paper edge: clutter stuck to the region is not
            # a cut-off outline may run past clutter on its way to the border: judge it whole
            outline = quad if not touches else _outline(c)
            support = _edge_support(grayf, outline, weakest=not touches)
            score = qarea * support**2 * (0.5 if touches else 1.0)
            if best is None or score > best[0]:
                best = (score, quad, touches)
    return None if best is None else (best[1], best[2])


def _fit_line(pts: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Total-least-squares line (point, unit direction), refitted without outliers."""
    for _ in range(2):
        if len(pts) < 4:
            return None
        centre = pts.mean(axis=0)
        _, _, vt = np.linalg.svd(pts - centre)
        d, n = vt[0], vt[1]
        dist = np.abs((pts - centre) @ n)
        keep = dist <= max(1.5, 2.5 * float(np.median(dist)))
        pts = pts[keep]
    return centre, d


def _intersect(
    l1: tuple[NDArray[np.float64], NDArray[np.float64]],
    l2: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.float64] | None:
    (p, d), (q, e) = l1, l2
    m = np.array([d, -e]).T
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    t = np.linalg.solve(m, q - p)
    return np.asarray(p + t[0] * d, np.float64)


def _refine(gray: NDArray[np.float32], quad: Quad, search: int) -> tuple[Quad, float]:
    """Re-fit the four sides at full resolution; returns corners and the edge spread (px)."""
    samples = 24
    offs = np.arange(-search, search + 1, dtype=np.float64)
    ts = np.linspace(0.12, 0.88, samples)
    lines = []
    spreads: list[float] = []
    for i in range(4):
        p0, p1 = quad[i], quad[(i + 1) % 4]
        d = p1 - p0
        length = float(np.linalg.norm(d))
        if length < 8:
            return quad, math.nan
        t = d / length
        n = np.array([-t[1], t[0]])  # points into the document (clockwise order)
        base = p0 + ts[:, None] * d
        pts = base[:, None, :] + offs[None, :, None] * n
        prof = cv2.remap(
            gray,
            pts[..., 0].astype(np.float32),
            pts[..., 1].astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        prof = cv2.GaussianBlur(prof, (3, 1), 0).astype(np.float64)
        grad = np.diff(prof, axis=1)
        k = np.argmax(grad, axis=1)
        peak = grad[np.arange(samples), k]
        step = prof[:, -4:].mean(axis=1) - prof[:, :4].mean(axis=1)
        good = (peak > 2.0) & (step > 8.0) & (k > 0) & (k < grad.shape[1] - 1)
        if good.sum() < 6:
            return quad, math.nan
        kk = k[good]
        g0, g1, g2 = grad[good, kk - 1], grad[good, kk], grad[good, kk + 1]
        denom = g0 - 2 * g1 + g2
        sub = np.where(np.abs(denom) > 1e-9, 0.5 * (g0 - g2) / np.where(denom == 0, 1, denom), 0.0)
        pos = offs[kk] + 0.5 + np.clip(sub, -0.5, 0.5)
        edge_pts = base[good] + pos[:, None] * n
        spreads.append(float(np.median(step[good] / peak[good])))
        line = _fit_line(edge_pts)
        if line is None:
            return quad, math.nan
        lines.append(line)
    out = np.empty((4, 2))
    for i in range(4):
        corner = _intersect(lines[i - 1], lines[i])
        if corner is None or np.linalg.norm(corner - quad[i]) > 2.5 * search:
            return quad, max(spreads)
        out[i] = corner
    return out, max(spreads)


def detect_document(frame: NDArray[np.uint8]) -> DetectedDocument | None:
    """The document in a BGR frame, or None when no document-like region is visible."""
    h, w = frame.shape[:2]
    gray_full = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    scale = w / _DETECT_WIDTH if w > _DETECT_WIDTH else 1.0
    size = (round(w / scale), round(h / scale))
    small_bgr = np.asarray(
        cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale > 1 else frame, np.uint8
    )
    small = np.asarray(
        cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY) if small_bgr.ndim == 3 else small_bgr, np.uint8
    )
    found = _coarse(small_bgr, small)
    if found is None:
        return None
    quad, touches = found
    quad = quad * scale
    if _signed_area(quad) < 0:
        quad = quad[::-1]
    search = max(6, round(4 * scale) + 4)
    refined, spread = _refine(gray_full.astype(np.float32), quad, search)
    kind = classify_kind(refined)
    corners = order_corners(refined, kind)
    area = abs(_signed_area(corners)) / float(w * h)
    return DetectedDocument(corners, kind, area, touches, spread, (w, h))


def scan_size(kind: DocumentKind, dpi: int | None = None) -> tuple[int, int]:
    """Pixel size (width, height) of the flat scan of `kind` at `dpi` (default per kind)."""
    mm_w, mm_h = KIND_SIZE_MM[kind]
    d = KIND_DPI[kind] if dpi is None else dpi
    return round(mm_w / 25.4 * d), round(mm_h / 25.4 * d)


def warp_document(
    frame: NDArray[np.uint8], corners: Quad, size: tuple[int, int]
) -> NDArray[np.uint8]:
    """The quadrilateral flattened to `size` (width, height) with a perspective warp."""
    w, h = size
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    out: NDArray[np.uint8] = np.asarray(
        cv2.warpPerspective(
            frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ),
        np.uint8,
    )
    return out


def scan(
    frame: NDArray[np.uint8], doc: DetectedDocument, dpi: int | None = None
) -> NDArray[np.uint8]:
    """The readable flat scan of a detected document (its kind's size and resolution)."""
    return warp_document(frame, doc.corners, scan_size(doc.kind, dpi))


def source_dpi(doc: DetectedDocument) -> float:
    """Resolution the camera actually gives the document (frame pixels per inch along it)."""
    s = _side_lengths(doc.corners)
    mm_w, mm_h = KIND_SIZE_MM[doc.kind]
    px_w, px_h = (s[0] + s[2]) / 2, (s[1] + s[3]) / 2
    return float(min(px_w / mm_w, px_h / mm_h) * 25.4)


def corner_angles_deg(q: Quad) -> NDArray[np.float64]:
    """Interior angle at each corner, degrees."""
    prev = np.roll(q, 1, axis=0) - q
    nxt = np.roll(q, -1, axis=0) - q
    cos = np.sum(prev * nxt, axis=1) / (
        np.linalg.norm(prev, axis=1) * np.linalg.norm(nxt, axis=1) + 1e-9
    )
    return np.asarray(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), np.float64)


def opposite_side_ratio(q: Quad) -> float:
    """Largest ratio between opposite sides: 1.0 for a document seen straight on."""
    s = _side_lengths(q)
    return float(
        max(
            max(s[0], s[2]) / max(min(s[0], s[2]), 1e-6),
            max(s[1], s[3]) / max(min(s[1], s[3]), 1e-6),
        )
    )
