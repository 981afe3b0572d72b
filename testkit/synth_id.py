"""Synthetic test material: ID cards with Chinese text, document-camera effects, live frames.

Used by tests and benchmarks only; never by the service. Importable without dlib: callers
pass the face box of the source photo (see `tests/verify/conftest.py` for how it is found).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from verify.idnumber import PROVINCES, with_check_digit

RGB = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]  # top, right, bottom, left (face_recognition's order)

FONT_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CARD_SIZE = (856, 540)  # width, height: ISO/IEC 7810 ID-1 at 10 px per mm
_NOSE_Y = 0.565  # the nose's height in a head crop, as a fraction (see _face_depth)
# Where the portrait sits on the front of a resident ID card (left, top, right, bottom).
PORTRAIT_BOX = (580, 70, 810, 350)


@dataclass(frozen=True)
class CardFields:
    name: str = "张伟"
    sex: str = "男"
    ethnicity: str = "汉"
    birth: str = "1980年1月1日"
    address: str = "北京市东城区景山前街4号"
    number: str = "11010519800101001X"


@dataclass(frozen=True)
class CameraEffect:
    """How the document camera sees a card: the stronger, the smaller and worse."""

    name: str
    card_width_px: int  # card width in the final frame
    tilt: float  # corner jitter as a fraction of the card size
    blur_sigma: float
    glare: float  # 0..1 strength of a specular spot
    jpeg_quality: int
    frame_size: tuple[int, int] = (1280, 720)


EFFECTS: dict[str, CameraEffect] = {
    "mild": CameraEffect("mild", 520, 0.03, 0.6, 0.25, 70),
    "medium": CameraEffect("medium", 400, 0.06, 0.9, 0.45, 50),
    "strong": CameraEffect("strong", 260, 0.09, 1.1, 0.6, 30),
}


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


def head_crop(photo: RGB, face: Box, aspect: float = 230 / 280) -> RGB:
    """Crop a passport-style head-and-shoulders region around a face box."""
    top, right, bottom, left = face
    fh = bottom - top
    cx = (left + right) / 2
    h = fh * 2.0
    w = h * aspect
    y0 = top - fh * 0.55
    return _crop_padded(photo, int(cx - w / 2), int(y0), int(w), int(h))


def head_crop_at(photo: RGB, nose: tuple[float, float], eye_distance: float) -> RGB:
    """The same head crop placed from landmarks: the nose where `turn_head` expects it."""
    h = 2 * 2.2 * eye_distance
    w = h * 230 / 280
    return _crop_padded(photo, int(nose[0] - w / 2), int(nose[1] - _NOSE_Y * h), int(w), int(h))


def load_head(path: Path) -> RGB:
    """A head crop from a portrait file, placed on its 5 landmarks (needs dlib)."""
    from verify import face_model

    photo = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
    # Find the face on a quarter-size copy: portraits have large faces.
    scale = 0.25 if min(photo.shape[:2]) >= 800 else 1.0
    small = np.asarray(cv2.resize(photo, None, fx=scale, fy=scale), np.uint8)
    boxes = face_model.detect(small) or face_model.detect(small, 1)
    if not boxes:
        raise ValueError(f"no face in {path}")
    box = max(boxes, key=lambda b: b.width).scaled(1 / scale)
    _, points = face_model.landmarks(photo, box)
    return head_crop_at(photo, points.nose, points.eye_distance)


def close_eyes(head: RGB) -> RGB:
    """The same head crop with its eyes shut: each upper lid slid down over its eye (the
    skin above the eye stretched to the lower lid) and a line of lashes along its edge."""
    from verify import face_model

    boxes = face_model.detect(head) or face_model.detect(head, 1)
    if not boxes:
        raise ValueError("no face in the head crop")
    _, points = face_model.landmarks(head, boxes[0])
    h, w = head.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = head.astype(np.float32)
    for corners in (points.eye_a, points.eye_b):
        a, b = (np.asarray(c, np.float32) for c in sorted(corners))
        ew = float(np.linalg.norm(b - a))
        cx, cy = (a + b) / 2
        top, lid, low = cy - 0.5 * ew, cy - 0.2 * ew, cy + 0.2 * ew
        # Rows from above the lid to the lower lid take the lid's skin (top..lid), stretched.
        t = (yy - top) / (low - top)
        src_y = np.where((t >= 0) & (t <= 1), top + t * (lid - top), yy)
        across = np.clip(1 - np.abs(xx - cx) / (0.65 * ew), 0, 1) ** 0.5
        map_y = (yy + (src_y - yy) * across).astype(np.float32)
        out = np.asarray(cv2.remap(out, xx, map_y, cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE), np.float32)
        xs = np.linspace(a[0] - 0.05 * ew, b[0] + 0.05 * ew, 12)
        ys = cy + 0.06 * ew * np.sin(np.linspace(0, np.pi, 12))
        lashes = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(out, [lashes], False, (45, 35, 32), max(1, round(ew / 18)), cv2.LINE_AA)
    return np.asarray(np.clip(out, 0, 255), np.uint8)


def _crop_padded(image: RGB, x: int, y: int, w: int, h: int) -> RGB:
    pad = max(w, h)
    bordered = np.asarray(cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
    return np.ascontiguousarray(bordered[y + pad : y + pad + h, x + pad : x + pad + w], np.uint8)


def render_card(portrait: RGB | None, fields: CardFields = CardFields()) -> RGB:
    """The front of a resident ID card, CARD_SIZE, with the portrait (or none) on the right."""
    w, h = CARD_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = 8 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    base = np.stack([232 + wave, 238 + wave * 0.5, 244 - wave * 0.3], axis=-1)
    card = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(card)
    label, value = (60, 90, 120), (20, 20, 20)
    rows = [
        ((50, 60), "姓 名", (150, 56), fields.name, 34),
        ((50, 125), "性 别", (150, 122), fields.sex, 28),
        ((260, 125), "民 族", (360, 122), fields.ethnicity, 28),
        ((50, 185), "出 生", (150, 182), fields.birth, 28),
        ((50, 245), "住 址", (150, 242), fields.address, 26),
    ]
    for lpos, ltext, vpos, vtext, size in rows:
        draw.text(lpos, ltext, font=_font(24), fill=label)
        draw.text(vpos, vtext, font=_font(size), fill=value)
    draw.text((50, 440), "公民身份号码", font=_font(26), fill=label)
    draw.text((250, 432), fields.number, font=_font(38), fill=value)
    if portrait is not None:
        x0, y0, x1, y1 = PORTRAIT_BOX
        photo = Image.fromarray(portrait).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        card.paste(photo, (x0, y0))
    return np.asarray(card, dtype=np.uint8).copy()


def photograph_card(card: RGB, effect: CameraEffect, seed: int = 0) -> RGB:
    """The card as a document camera sees it: small, tilted, blurred, glared, JPEG'd."""
    rng = np.random.default_rng(seed)
    fw, fh = effect.frame_size
    ch, cw = card.shape[:2]
    scale = effect.card_width_px / cw
    dw, dh = cw * scale, ch * scale
    cx = fw / 2 + rng.uniform(-0.15, 0.15) * (fw - dw)
    cy = fh / 2 + rng.uniform(-0.15, 0.15) * (fh - dh)
    corners = np.array(
        [[cx - dw / 2, cy - dh / 2], [cx + dw / 2, cy - dh / 2],
         [cx + dw / 2, cy + dh / 2], [cx - dw / 2, cy + dh / 2]],
        dtype=np.float32,
    )  # fmt: skip
    corners += rng.uniform(-1, 1, size=(4, 2)).astype(np.float32) * effect.tilt * dw
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners)
    desk = _desk(fw, fh, rng)
    # Supersample the warp so the shrink antialiases like a real lens would.
    warped = cv2.warpPerspective(card, matrix, (fw, fh), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), matrix, (fw, fh))
    frame = np.where(mask[..., None] > 127, warped, desk).astype(np.float32)
    frame = _add_glare(frame, corners, effect.glare, rng)
    if effect.blur_sigma > 0:
        frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), effect.blur_sigma), np.float32)
    frame += rng.normal(0, 2.0, frame.shape).astype(np.float32)
    return jpeg(np.clip(frame, 0, 255).astype(np.uint8), effect.jpeg_quality)


def _desk(w: int, h: int, rng: np.random.Generator) -> RGB:
    tone = rng.uniform(60, 120)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = 10 * np.sin(xx / 7.0 + yy / 53.0)
    base = np.stack([tone + grain + 20, tone + grain + 8, tone + grain], axis=-1)
    out: RGB = np.clip(base, 0, 255).astype(np.uint8)
    return out


def _add_glare(
    frame: npt.NDArray[np.float32],
    corners: npt.NDArray[np.float32],
    strength: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    if strength <= 0:
        return frame
    h, w = frame.shape[:2]
    # The spot lands somewhere on the card, often near the portrait.
    t = rng.uniform(0.3, 0.9)
    s = rng.uniform(0.2, 0.8)
    top = corners[0] + (corners[1] - corners[0]) * t
    bottom = corners[3] + (corners[2] - corners[3]) * t
    gx, gy = top + (bottom - top) * s
    radius = np.linalg.norm(corners[1] - corners[0]) * 0.18
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spot = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2)) * strength
    out: npt.NDArray[np.float32] = frame + (255 - frame) * spot[..., None]
    return out


def jpeg(image: RGB, quality: int) -> RGB:
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)
    return np.ascontiguousarray(decoded[..., ::-1])


def turn_head(head: RGB, yaw: float = 0.0, pitch: float = 0.0) -> RGB:
    """Approximate a head turn on a flat head crop (from `head_crop`) with a depth map.

    The face is an ellipsoid with a nose on it; rotating it moves near points (the nose)
    more than far ones (the eyes), as a real turn does. Radians; yaw > 0 moves the nose to
    the image's right (the subject's own left), pitch > 0 nods down.
    """
    h, w = head.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = _face_depth(xx, yy, w, h)
    # Orthographic rotation, inverted approximately with the depth at the output pixel.
    map_x = (xx - depth * np.sin(yaw)).astype(np.float32)
    map_y = (yy - depth * np.sin(pitch)).astype(np.float32)
    out = cv2.remap(head, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, np.uint8)


def _face_depth(
    xx: npt.NDArray[np.float32], yy: npt.NDArray[np.float32], w: int, h: int
) -> npt.NDArray[np.float32]:
    # head_crop puts a face of height h/2 with its centre at (w/2, 0.525 h).
    face = h / 2
    cx, cy = w / 2, 0.525 * h
    r2 = ((xx - cx) / (0.55 * face)) ** 2 + ((yy - cy) / (0.75 * face)) ** 2
    skull = 0.35 * face * np.sqrt(np.clip(1 - r2, 0, 1))
    nx, ny = cx, _NOSE_Y * h
    nose = (
        0.22
        * face
        * np.exp(-(((xx - nx) / (0.1 * face)) ** 2 + ((yy - ny) / (0.2 * face)) ** 2) / 2)
    )
    out: npt.NDArray[np.float32] = (skull + nose).astype(np.float32)
    return out


def live_frame(
    head: RGB,
    size: tuple[int, int] = (640, 480),
    face_width_frac: float = 0.45,
    shift: tuple[float, float] = (0.0, 0.0),
    yaw: float = 0.0,
    pitch: float = 0.0,
    light: float = 1.0,
    noise: float = 2.0,
    seed: int = 0,
) -> RGB:
    """A face-camera frame: the head crop on a plain wall, posed, lit and noisy."""
    rng = np.random.default_rng(seed)
    w, h = size
    posed = turn_head(head, yaw, pitch) if (yaw or pitch) else head
    hw = int(w * face_width_frac)
    hh = int(hw * head.shape[0] / head.shape[1])
    if hh > h:
        hh = h
        hw = int(hh * head.shape[1] / head.shape[0])
    scaled = np.asarray(cv2.resize(posed, (hw, hh), interpolation=cv2.INTER_AREA))
    frame: npt.NDArray[np.float32] = np.empty((h, w, 3), np.float32)
    frame[:] = (196, 200, 206)
    x0 = int((w - hw) / 2 + shift[0] * w)
    y0 = int(h - hh + shift[1] * h)
    _paste(frame, scaled.astype(np.float32), x0, y0)
    frame = (frame * light + rng.normal(0, noise, frame.shape)).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _paste(frame: npt.NDArray[np.float32], tile: npt.NDArray[np.float32], x: int, y: int) -> None:
    h, w = frame.shape[:2]
    th, tw = tile.shape[:2]
    fx0, fy0 = max(x, 0), max(y, 0)
    fx1, fy1 = min(x + tw, w), min(y + th, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    frame[fy0:fy1, fx0:fx1] = tile[fy0 - y : fy1 - y, fx0 - x : fx1 - x]


def two_faces_frame(head_a: RGB, head_b: RGB, size: tuple[int, int] = (640, 480)) -> RGB:
    """Two people in one face-camera frame."""
    left = live_frame(head_a, size, face_width_frac=0.3, shift=(-0.22, 0.0))
    right = live_frame(head_b, size, face_width_frac=0.3, shift=(0.22, 0.0))
    w = size[0]
    out = left.copy()
    out[:, w // 2 :] = right[:, w // 2 :]
    return out


_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强")


def random_number(rng: np.random.Generator) -> str:
    """A valid random resident ID number (checksum, birth date and province all right)."""
    province = sorted(PROVINCES)[int(rng.integers(0, 31))]  # mainland provinces only
    region = f"{province}{int(rng.integers(1, 10)):02d}{int(rng.integers(1, 30)):02d}"
    birth = f"{int(rng.integers(1950, 2005))}{int(rng.integers(1, 13)):02d}"
    birth += f"{int(rng.integers(1, 29)):02d}"
    return with_check_digit(region + birth + f"{int(rng.integers(0, 1000)):03d}")


def rough_head(photo: RGB) -> RGB:
    """A head crop without a face detector: portraits put the head in the upper middle."""
    h, w = photo.shape[:2]
    cw = int(min(w * 0.9, h * 0.8 * 230 / 280))
    ch = int(cw * 280 / 230)
    return _crop_padded(photo, (w - cw) // 2, int(h * 0.05), cw, ch)


def render_id_card_for_documents(rng: np.random.Generator, faces_dir: Path) -> tuple[RGB, str]:
    """A card front in BGR (OpenCV order) with a random face, name and valid number."""
    photos = sorted(p for p in faces_dir.glob("*.jpg") if "partial" not in p.name)
    portrait = None
    if photos:
        chosen = photos[int(rng.integers(0, len(photos)))]
        portrait = rough_head(np.asarray(Image.open(chosen).convert("RGB"), dtype=np.uint8))
    number = random_number(rng)
    name = _NAMES[int(rng.integers(0, len(_NAMES)))]
    card = render_card(portrait, CardFields(name=name, number=number))
    return np.ascontiguousarray(card[..., ::-1]), number
