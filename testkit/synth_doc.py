"""Camera-like frames of documents for tests and benchmarks, with ground-truth corners.

Renders Chinese pages (A4 and booklet pages) with a CJK font, takes ID cards from
`testkit.synth_id`, and places them in a cluttered 1280x720 scene with perspective,
rotation and one chosen defect (blur, glare, dim or harsh light, cut-off, too small,
too skewed). Deterministic for a given `numpy.random.Generator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from verify.document_detect import KIND_ASPECT, DocumentKind

FONT_PATH = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FRAME_SIZE = (1280, 720)

Defect = Literal[
    "good", "blur", "glare", "too_dark", "too_bright", "cut_off", "too_small", "too_skewed"
]
DEFECTS: tuple[Defect, ...] = (
    "good", "blur", "glare", "too_dark", "too_bright", "cut_off", "too_small", "too_skewed",
)  # fmt: skip

_SENTENCES = (
    "申请人因房屋年久失修，现申请办理农村危房改造补助。",
    "本人承诺所填写的信息真实有效，如有虚假愿承担相应法律责任。",
    "经村民委员会核实，申请人家庭情况属实，同意上报乡镇人民政府审核。",
    "请携带居民身份证、户口簿及相关证明材料原件到窗口办理。",
    "根据有关规定，办理时限为十五个工作日，材料齐全的当场受理。",
    "特此证明。联系电话请填写本人常用手机号码，以便及时通知办理结果。",
    "跨省通办事项由受理地窗口收件，业务归属地部门审核并出具结果。",
)
_TITLES = ("农村危房改造申请表", "居住证明", "社会救助申请书", "承诺书", "情况说明")
_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强")


@dataclass(frozen=True)
class SyntheticFrame:
    """One generated camera frame and what a perfect detector would report for it."""

    image: NDArray[np.uint8]  # BGR, FRAME_SIZE
    corners: NDArray[np.float64]  # 4x2, the document's own top-left, top-right, ...
    kind: DocumentKind
    defect: Defect
    id_number: str | None  # the number printed on a card, None for pages


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size, index=0)


def _to_bgr(img: Image.Image) -> NDArray[np.uint8]:
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.FreeTypeFont
) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if draw.textlength(line + ch, font=font) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line] if line else lines


def render_page(rng: np.random.Generator, width: int = 744) -> NDArray[np.uint8]:
    """An A4 page (portrait) with a title, Chinese paragraphs, a table and a red seal."""
    height = round(width * KIND_ASPECT["a4"])
    paper = tuple(int(v) for v in rng.integers(212, 236, size=3))
    img = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(img)
    margin = width // 10
    title = _TITLES[int(rng.integers(len(_TITLES)))]
    tf = _font(width // 22)
    draw.text(
        ((width - draw.textlength(title, font=tf)) / 2, margin), title, fill=(20, 20, 20), font=tf
    )
    bf = _font(width // 40)
    y = margin + width // 10
    for _ in range(int(rng.integers(3, 6))):
        para = "　　" + "".join(rng.choice(_SENTENCES, size=int(rng.integers(2, 5))))
        for line in _wrap(draw, para, width - 2 * margin, bf):
            draw.text((margin, y), line, fill=(30, 30, 30), font=bf)
            y += int(bf.size * 1.7)
        y += int(bf.size)
        if y > height * 0.62:
            break
    # A small form table, as on most application forms.
    rows, top = 4, max(y, int(height * 0.64))
    row_h = bf.size * 2
    for r in range(rows + 1):
        draw.line(
            [(margin, top + r * row_h), (width - margin, top + r * row_h)],
            fill=(40, 40, 40),
            width=2,
        )
    for x in (margin, width // 3, width - margin):
        draw.line([(x, top), (x, top + rows * row_h)], fill=(40, 40, 40), width=2)
    for r, label in enumerate(("姓名", "住址", "联系电话", "申请日期")):
        draw.text((margin + 8, top + r * row_h + bf.size // 2), label, fill=(30, 30, 30), font=bf)
    name = _NAMES[int(rng.integers(len(_NAMES)))]
    draw.text((width // 3 + 8, top + bf.size // 2), name, fill=(30, 30, 30), font=bf)
    cx, cy, rad = width - 2 * margin, top + rows * row_h + width // 9, width // 11
    draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=(200, 40, 40), width=4)
    draw.text((cx - bf.size, cy - bf.size // 2), "公章", fill=(200, 40, 40), font=bf)
    return _to_bgr(img)


def render_booklet_page(rng: np.random.Generator, width: int = 750) -> NDArray[np.uint8]:
    """A household-register style booklet page (landscape, tinted, ruled fields)."""
    height = round(width / KIND_ASPECT["booklet"])
    tint = (int(rng.integers(215, 235)), int(rng.integers(225, 240)), int(rng.integers(232, 246)))
    img = Image.new("RGB", (width, height), tint)
    draw = ImageDraw.Draw(img)
    for x in range(0, width, 12):  # fine security print pattern
        draw.line(
            [(x, 0), (x + height // 2, height)], fill=(tint[0] - 10, tint[1] - 6, tint[2] - 4)
        )
    hf, bf = _font(width // 22), _font(width // 36)
    title = "常住人口登记卡"
    draw.text(
        ((width - draw.textlength(title, font=hf)) / 2, height // 14),
        title,
        fill=(30, 30, 60),
        font=hf,
    )
    left, right, top = width // 14, width - width // 14, height // 5
    labels = ("姓名", "户主或与户主关系", "曾用名", "性别", "出生地", "民族", "籍贯", "出生日期")
    row_h = (height - top - height // 10) // len(labels)
    for r, label in enumerate(labels):
        yy = top + r * row_h
        draw.line([(left, yy), (right, yy)], fill=(60, 60, 90), width=2)
        draw.text((left + 6, yy + row_h // 4), label, fill=(40, 40, 70), font=bf)
        if r in (0, 3, 5):
            value = _NAMES[int(rng.integers(len(_NAMES)))] if r == 0 else ("男" if r == 3 else "汉")
            draw.text((width // 2, yy + row_h // 4), value, fill=(15, 15, 15), font=bf)
    draw.line(
        [(left, top + len(labels) * row_h), (right, top + len(labels) * row_h)],
        fill=(60, 60, 90),
        width=2,
    )
    draw.rectangle([left, top, right, top + len(labels) * row_h], outline=(60, 60, 90), width=3)
    return _to_bgr(img)


def render_card(rng: np.random.Generator, faces_dir: Path) -> tuple[NDArray[np.uint8], str]:
    """An ID card front (portrait side) with a valid random number, from testkit.synth_id."""
    from testkit import synth_id

    return synth_id.render_id_card_for_documents(rng, faces_dir)


def _background(rng: np.random.Generator) -> NDArray[np.float32]:
    w, h = FRAME_SIZE
    base = rng.uniform(50, 150, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = 1.0 + 0.25 * ((xx / w) * rng.uniform(-1, 1) + (yy / h) * rng.uniform(-1, 1))
    bg = base[None, None, :] * ramp[:, :, None]
    # Wood-like grain: a few low-frequency stripes.
    grain = np.sin(yy / rng.uniform(6, 20) + 3 * np.sin(xx / rng.uniform(60, 200))) * rng.uniform(
        3, 10
    )
    bg += grain[:, :, None]
    canvas = np.clip(bg, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 14))):  # clutter: pens, cups, cables, a sticky note
        color = tuple(int(c) for c in rng.uniform(20, 200, size=3))
        shape = int(rng.integers(4))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if shape == 0:
            cv2.rectangle(
                canvas,
                (x, y),
                (x + int(rng.integers(20, 160)), y + int(rng.integers(10, 90))),
                color,
                -1,
            )
        elif shape == 1:
            cv2.circle(canvas, (x, y), int(rng.integers(15, 70)), color, -1)
        elif shape == 2:
            end = (x + int(rng.integers(-300, 300)), y + int(rng.integers(-300, 300)))
            cv2.line(canvas, (x, y), end, color, int(rng.integers(2, 9)))
        else:
            side = int(rng.integers(50, 90))
            cv2.rectangle(canvas, (x, y), (x + side, y + side), (140, 225, 235), -1)
    return np.asarray(canvas, np.float32)


def _project(
    size: tuple[float, float], roll: float, tilt_x: float, tilt_y: float, focal: float
) -> NDArray[np.float64]:
    """Corners of a w x h plane rotated in 3D, seen by a pinhole camera, centred at 0."""
    w, h = size
    pts = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]])
    cr, sr = math.cos(roll), math.sin(roll)
    cx, sx = math.cos(tilt_x), math.sin(tilt_x)
    cy, sy = math.cos(tilt_y), math.sin(tilt_y)
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    p = pts @ (ry @ rx @ rz).T
    z = p[:, 2] + focal
    return np.stack([focal * p[:, 0] / z, focal * p[:, 1] / z], axis=1)


def _place(
    rng: np.random.Generator, doc_wh: tuple[int, int], defect: Defect
) -> NDArray[np.float64]:
    """Where the document's corners land in the frame for this defect."""
    fw, fh = FRAME_SIZE
    aspect = doc_wh[0] / doc_wh[1]
    for _ in range(200):
        area = rng.uniform(0.015, 0.045) if defect == "too_small" else rng.uniform(0.16, 0.42)
        h = math.sqrt(area * fw * fh / aspect)
        roll = math.radians(rng.uniform(-25, 25))
        if defect == "too_skewed":
            tilt = math.radians(rng.uniform(52, 62))
            tx, ty = (tilt, 0.0) if rng.random() < 0.5 else (0.0, tilt)
            tx, ty = tx * rng.choice([-1, 1]), ty * rng.choice([-1, 1])
        else:
            tx, ty = (math.radians(rng.uniform(-10, 10)) for _ in range(2))
        pts = _project((aspect * h, h), roll, tx, ty, focal=1100.0)
        if defect == "cut_off":
            centre = np.array([fw / 2, fh / 2]) + rng.uniform(-80, 80, size=2)
            axis = int(rng.integers(2))
            sign = rng.choice([-1.0, 1.0])
            span = pts[:, axis].max() - pts[:, axis].min()
            limit = fw if axis == 0 else fh
            # push the document over one edge by 15-35 % of its size
            centre[axis] = limit / 2 + sign * (
                limit / 2 - span / 2 + span * rng.uniform(0.15, 0.35)
            )
            return pts + centre
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        margin = 0.04 * fh
        free_x = fw - (hi[0] - lo[0]) - 2 * margin
        free_y = fh - (hi[1] - lo[1]) - 2 * margin
        if free_x < 0 or free_y < 0:
            continue
        off = np.array(
            [margin + rng.uniform(0, free_x) - lo[0], margin + rng.uniform(0, free_y) - lo[1]]
        )
        return np.asarray(pts + off, np.float64)
    raise RuntimeError("could not place the document in the frame")


def _composite(
    bg: NDArray[np.float32], doc: NDArray[np.uint8], corners: NDArray[np.float64]
) -> NDArray[np.float32]:
    h, w = doc.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    size = FRAME_SIZE
    warped = cv2.warpPerspective(doc, m, size, flags=cv2.INTER_AREA).astype(np.float32)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, size, flags=cv2.INTER_LINEAR)
    alpha2 = mask.astype(np.float32) / 255.0
    shadow = cv2.GaussianBlur(alpha2, (0, 0), 6)[:, :, None]  # a soft shadow under the paper
    alpha = alpha2[:, :, None]
    return np.asarray(bg * (1 - 0.35 * shadow) * (1 - alpha) + warped * alpha, np.float32)


def _defect(
    rng: np.random.Generator, img: NDArray[np.float32], corners: NDArray[np.float64], defect: Defect
) -> NDArray[np.float32]:
    h, w = img.shape[:2]
    if defect == "blur":
        if rng.random() < 0.5:
            img = np.asarray(cv2.GaussianBlur(img, (0, 0), rng.uniform(3.0, 5.0)), np.float32)
        else:  # motion blur from a moving hand
            length = int(rng.integers(15, 27))
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            rot = cv2.getRotationMatrix2D(
                (length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0
            )
            kernel = np.asarray(cv2.warpAffine(kernel, rot, (length, length)), np.float32)
            img = np.asarray(cv2.filter2D(img, -1, kernel / kernel.sum()), np.float32)
    elif defect == "glare":
        t = rng.uniform(0.25, 0.75, size=2)
        top = corners[0] + t[0] * (corners[1] - corners[0])
        bottom = corners[3] + t[0] * (corners[2] - corners[3])
        cx, cy = top + t[1] * (bottom - top)
        diag = float(np.linalg.norm(corners[2] - corners[0]))
        sx, sy = diag * rng.uniform(0.07, 0.14), diag * rng.uniform(0.05, 0.1)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
        img = img + (rng.uniform(260, 400) * blob)[:, :, None]
    elif defect == "too_dark":
        img = img * rng.uniform(0.12, 0.24)
    elif defect == "too_bright":
        img = img * rng.uniform(1.45, 1.8) + rng.uniform(30, 60)
    return img


def make_frame(
    rng: np.random.Generator,
    kind: DocumentKind,
    defect: Defect,
    faces_dir: Path | None = None,
    doc: tuple[NDArray[np.uint8], str | None] | None = None,
) -> SyntheticFrame:
    """One 1280x720 frame of `kind` with `defect`; pass `doc` to reuse a rendered document."""
    if doc is None:
        doc = render_document(rng, kind, faces_dir)
    image, number = doc
    corners = _place(rng, (image.shape[1], image.shape[0]), defect)
    img = _composite(_background(rng), image, corners)
    if rng.random() < (0.5 if kind == "id_card" else 0.25):
        img = _finger(rng, img, corners)
    img = img * _lighting(rng)
    if rng.random() < 0.3:
        img = _hand_shadow(rng, img)
    img = _defect(rng, img, corners, defect)
    if defect != "blur":
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), 0.7), np.float32)  # camera optics
    img = img + rng.normal(0, 2.5, size=img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    # the frame has been through a video codec on its way from the kiosk
    quality = int(rng.integers(55, 90))
    ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if ok:
        out = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)
    return SyntheticFrame(out, corners, kind, defect, number)


def _finger(
    rng: np.random.Generator, img: NDArray[np.float32], corners: NDArray[np.float64]
) -> NDArray[np.float32]:
    """A thumb holding the document, over the middle part of one side."""
    side = int(rng.integers(4))
    p0, p1 = corners[side], corners[(side + 1) % 4]
    d = p1 - p0
    length = float(np.linalg.norm(d))
    normal_in = np.array([-d[1], d[0]]) / length
    diag = float(np.linalg.norm(corners[2] - corners[0]))
    tip = p0 + rng.uniform(0.3, 0.7) * d + normal_in * diag * rng.uniform(0.02, 0.05)
    along = diag * rng.uniform(0.18, 0.3)  # the thumb comes in from outside the document
    centre = tip - normal_in * along / 2
    angle = math.degrees(math.atan2(normal_in[1], normal_in[0]))
    width = diag * rng.uniform(0.045, 0.065)
    mask = np.zeros(img.shape[:2], np.float32)
    axes = (round(along / 2), round(width / 2))
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1.0, -1)
    mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), 2.0), np.float32)[:, :, None]
    skin = np.array([rng.uniform(95, 140), rng.uniform(130, 165), rng.uniform(175, 215)])
    return np.asarray(img * (1 - mask) + skin.astype(np.float32) * mask, np.float32)


def _hand_shadow(rng: np.random.Generator, img: NDArray[np.float32]) -> NDArray[np.float32]:
    """A soft shadow over part of the frame (a hand or the applicant's head under a lamp)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    dist = (xx - w / 2) * math.cos(theta) + (yy - h / 2) * math.sin(theta) - rng.uniform(-200, 200)
    shade = 1.0 - rng.uniform(0.2, 0.4) / (1.0 + np.exp(-dist / rng.uniform(20, 60)))
    return np.asarray(img * shade[:, :, None], np.float32)


def _lighting(rng: np.random.Generator) -> NDArray[np.float32]:
    w, h = FRAME_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = 1.0 + 0.08 * ((xx / w - 0.5) * rng.uniform(-1, 1) + (yy / h - 0.5) * rng.uniform(-1, 1))
    return np.asarray((g * rng.uniform(0.86, 1.0))[:, :, None], np.float32)


def render_document(
    rng: np.random.Generator, kind: DocumentKind, faces_dir: Path | None = None
) -> tuple[NDArray[np.uint8], str | None]:
    """A flat document image of `kind` and, for a card, its printed number."""
    if kind == "a4":
        return render_page(rng), None
    if kind == "booklet":
        return render_booklet_page(rng), None
    if faces_dir is None:
        raise ValueError("an ID card needs faces_dir")
    card, number = render_card(rng, faces_dir)
    return card, number


def today() -> date:
    """The date the generated cards are checked against (fixed, so runs repeat)."""
    return date(2026, 11, 25)
