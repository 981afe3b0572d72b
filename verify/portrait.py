"""The ID card portrait: find the card, rectify it, locate the face, crop, upsample, encode.

Accepts what the document camera sees (a small tilted card on a desk), an already cropped
card, or a portrait alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from verify import face_model
from verify.face_config import FaceMatchConfig
from verify.face_model import RGB, Encoding, FaceBox

CARD_OUT = (856, 540)  # rectified card size, ID-1 at 10 px per mm
_CARD_ASPECT = CARD_OUT[0] / CARD_OUT[1]

NO_PORTRAIT = "未在证件图像中找到人像，请将身份证正面完整放在文档摄像头下"


@dataclass(frozen=True)
class IdPortrait:
    """The encoded portrait, or the reason there is none."""

    encoding: Encoding | None
    face_px: int  # face width as found (before upsampling), 0 when none
    card_found: bool
    crop: RGB | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.encoding is not None


def find_card(image: RGB) -> npt.NDArray[np.float32] | None:
    """The four corners (tl, tr, br, bl) of the largest card-shaped quadrilateral, or None."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (5, 5), 0)
    edges = cv2.Canny(gray, 30, 90)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area_min = 0.03 * image.shape[0] * image.shape[1]
    best: npt.NDArray[np.float32] | None = None
    best_area = 0.0
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < area_min or area <= best_area:
            continue
        quad = cv2.approxPolyDP(contour, 0.03 * cv2.arcLength(contour, True), True)
        if len(quad) != 4 or not cv2.isContourConvex(quad):
            continue
        corners = _order(quad.reshape(4, 2).astype(np.float32))
        if _card_like(corners):
            best, best_area = corners, area
    return best


def _order(pts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    s = pts.sum(axis=1)
    d = np.diff(pts, axis=1).ravel()
    return np.array(
        [pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]],
        dtype=np.float32,
    )


def _card_like(c: npt.NDArray[np.float32]) -> bool:
    width = (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2
    height = (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2
    if height == 0:
        return False
    aspect = float(width / height)
    return 0.8 * _CARD_ASPECT <= aspect <= 1.2 * _CARD_ASPECT


def rectify(image: RGB, corners: npt.NDArray[np.float32]) -> RGB:
    w, h = CARD_OUT
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners, dst)
    return np.asarray(cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_CUBIC), np.uint8)


def _largest_face(image: RGB, upsamples: tuple[int, ...]) -> FaceBox | None:
    for upsample in upsamples:
        boxes = face_model.detect(image, upsample)
        if boxes:
            return max(boxes, key=lambda b: b.width)
    return None


def _locate(image: RGB) -> tuple[RGB, FaceBox | None, bool, float]:
    """(image the face was found in, box, card found, input px per image px)."""
    corners = find_card(image)
    if corners is not None:
        card = rectify(image, corners)
        box = _largest_face(card, (0, 1))
        if box is not None:
            seen_width = float(np.linalg.norm(corners[1] - corners[0]))
            return card, box, True, seen_width / CARD_OUT[0]
    # No card outline: an already cropped card or portrait, or a card we could not trace.
    upsamples = (0, 1) if image.shape[0] * image.shape[1] <= 1280 * 720 else (0,)
    return image, _largest_face(image, upsamples), False, 1.0


def crop_face(image: RGB, box: FaceBox, target_px: int) -> tuple[RGB, FaceBox]:
    """Crop the face with a margin and upsample it so it is at least target_px wide."""
    margin = int(box.width * 0.6)
    h, w = image.shape[:2]
    x0, y0 = max(box.left - margin, 0), max(box.top - margin, 0)
    x1, y1 = min(box.right + margin, w), min(box.bottom + margin, h)
    crop = image[y0:y1, x0:x1]
    factor = max(1.0, target_px / max(box.width, 1))
    if factor > 1.0:
        crop = np.asarray(
            cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC), np.uint8
        )
    return np.ascontiguousarray(crop), box.scaled(factor, -x0 * factor, -y0 * factor)


def extract_portrait(image: RGB, config: FaceMatchConfig | None = None) -> IdPortrait:
    """Find and encode the ID portrait in a document-camera image."""
    config = config or FaceMatchConfig()
    source, box, card_found, px_per_px = _locate(image)
    if box is None:
        return IdPortrait(None, 0, card_found, None, NO_PORTRAIT)
    crop, crop_box = crop_face(source, box, config.portrait_face_px)
    shape, _ = face_model.landmarks(crop, crop_box)
    encoding = face_model.encode(crop, shape, config.portrait_jitters)
    return IdPortrait(encoding, round(box.width * px_per_px), card_found, crop)
