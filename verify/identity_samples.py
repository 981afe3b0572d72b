"""One sampled frame of an identity check, judged: the card on the document camera, the
face on the face camera. Pure functions of an image, run in the worker's pool.

`card_sample` says what the applicant should change (live guidance) or takes the card:
its portrait encoded and its ID number read; `card_from_still` does the same for a
full-resolution still of the card taken earlier in the call (a scan). `face_sample`
detects once per frame and gives both what liveness needs and, when asked, the encoding
the match needs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from verify import face_model
from verify.eyes import openness
from verify.face_config import FaceMatchConfig
from verify.face_match import LiveFace
from verify.face_model import RGB
from verify.face_quality import GatedFrame, first_failed_gate, measure
from verify.id_ocr import IdNumberReading, read_id_number
from verify.liveness import LivenessFrame, _digest, _thumb, frame_points
from verify.portrait import IdPortrait, extract_portrait, find_card, rectify
from verify.sharpness import laplacian_variance

MODEL_VERSION = "dlib-resnet-v1+hog+5pt"  # face_recognition_models 0.3 (what encodes)


class CardGuidance(StrEnum):
    """What the kiosk tells the applicant while the card is being framed."""

    NO_CARD = "no_card"
    TOO_DARK = "too_dark"
    GLARE = "glare"
    TOO_BRIGHT = "too_bright"
    HOLD_STILL = "hold_still"
    NO_PORTRAIT = "no_portrait"
    TAKEN = "taken"


GUIDANCE_TEXT: dict[CardGuidance, str] = {
    CardGuidance.NO_CARD: "请把身份证有照片的一面放在下面的摄像头下",
    CardGuidance.TOO_DARK: "太暗了，请开灯或移到亮一点的地方",
    CardGuidance.GLARE: "反光，请把证件稍微倾斜一点",
    CardGuidance.TOO_BRIGHT: "太亮了，请避开强光，或把证件挪到暗一点的地方",
    CardGuidance.HOLD_STILL: "找到证件了，请拿稳一点",
    CardGuidance.NO_PORTRAIT: "找到证件了，请放平，让照片朝上",
    CardGuidance.TAKEN: "拍好了",
}

_DARK = 45.0  # mean grey of the whole frame below this: too dark to find anything
_GLARE_FRAC = 0.04  # share of saturated pixels on the flattened card: worth a word
_BRIGHT_FRAC = 0.4  # this much of the card saturated: over-exposed, not a spot of glare
_FACE_GLARE_FRAC = 0.08  # saturated share of the portrait's face that spoils the encoding
# where the portrait is on the front of a resident ID card (x0, y0, x1, y1, shares of it)
_PORTRAIT_AREA = (0.6, 0.1, 0.97, 0.8)
_CARD_SHARPNESS = 20.0  # variance of the Laplacian, half-size flattened card: small 40+, moved <12


@dataclass(frozen=True)
class CardSample:
    guidance: CardGuidance
    portrait: IdPortrait | None = None  # set when taken
    card: RGB | None = None  # the flattened card, when found
    number: IdNumberReading | None = None  # when taken


def card_sample(image: RGB, today: date, config: FaceMatchConfig,
                read_number: bool = True) -> CardSample:
    """Judge one document-camera frame; take the card when its portrait encodes (and read
    its number, unless the caller reads it apart: OCR takes ~1.5 s)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    corners = find_card(image)
    if corners is None:
        dark = float(gray.mean()) < _DARK
        return CardSample(CardGuidance.TOO_DARK if dark else CardGuidance.NO_CARD)
    card = rectify(image, corners)
    card_gray = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY)
    clipped = float(np.mean(card_gray >= 250))
    # Sharpness at half the flattened size: a small card far from the lens is upsampled by
    # the flattening, which would read as blur; a moving card is blurred at any size.
    half = cv2.resize(card_gray, (card_gray.shape[1] // 2, card_gray.shape[0] // 2),
                      interpolation=cv2.INTER_AREA)
    if laplacian_variance(half) < _CARD_SHARPNESS:
        return CardSample(CardGuidance.HOLD_STILL, card=card)
    # Saturation matters where it spoils the portrait: a pale card a little over-exposed,
    # or a spot of glare on blank card, still gives a good face and number.
    portrait = extract_portrait(image, config)
    if not portrait.ok or _face_clipped(portrait) > _FACE_GLARE_FRAC:
        if clipped > _BRIGHT_FRAC:
            return CardSample(CardGuidance.TOO_BRIGHT, card=card)
        if clipped > _GLARE_FRAC or portrait.ok or _area_clipped(card_gray) > _GLARE_FRAC:
            return CardSample(CardGuidance.GLARE, card=card)
        return CardSample(CardGuidance.NO_PORTRAIT, card=card)
    number = read_id_number(card, today) if read_number else None
    return CardSample(CardGuidance.TAKEN, portrait, card, number)


def _area_clipped(card_gray: npt.NDArray[Any]) -> float:
    """Saturated share of where the portrait should be: glare that hid the face."""
    h, w = card_gray.shape[:2]
    x0, y0, x1, y1 = _PORTRAIT_AREA
    return float(np.mean(card_gray[int(h * y0):int(h * y1), int(w * x0):int(w * x1)] >= 250))


def _face_clipped(portrait: IdPortrait) -> float:
    """Saturated share of the face itself: the middle of the crop (its margins are card)."""
    if portrait.crop is None:
        return 0.0
    h, w = portrait.crop.shape[:2]
    face = cv2.cvtColor(portrait.crop[int(h * 0.3):int(h * 0.7), int(w * 0.3):int(w * 0.7)],
                        cv2.COLOR_RGB2GRAY)
    return float(np.mean(face >= 250)) if face.size else 0.0


STILL_MAX_SIDE = 1600  # a card still is judged at most this large: ~700 px across the card


def card_from_still(data: bytes, today: date, config: FaceMatchConfig) -> CardSample:
    """A still of the card (JPEG, PNG, WebP) judged like a video frame, at a size where
    the card's portrait is several times what the video gives."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return CardSample(CardGuidance.NO_CARD)
    scale = STILL_MAX_SIDE / max(bgr.shape[:2])
    if scale < 1.0:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(np.asarray(bgr, np.uint8)[..., ::-1])
    return card_sample(image, today, config, read_number=False)


@dataclass(frozen=True)
class FaceSample:
    liveness: LivenessFrame
    live: LiveFace  # gated; encoded when asked and the gates passed


def face_sample(image: RGB, t: float, config: FaceMatchConfig, encode: bool) -> FaceSample:
    """Detect once: the liveness observation and the match's gate (and encoding)."""
    boxes = face_model.detect(image, 0, config.detect_width)
    digest = _digest(image)
    if len(boxes) != 1:
        gate = "no_face" if not boxes else "several_faces"
        return FaceSample(LivenessFrame(t, len(boxes), None, None, digest),
                          LiveFace(GatedFrame(gate, faces=len(boxes)), None))
    box = boxes[0]
    shape, points = face_model.landmarks(image, box)
    m = measure(image, box, points)
    gated = GatedFrame(first_failed_gate(m, config), box, points, shape, m, faces=1)
    encoding = face_model.encode(image, shape, config.live_jitters) if (
        encode and gated.ok) else None
    return FaceSample(LivenessFrame(t, 1, frame_points(points, image.shape[1]),
                                    _thumb(image, points), digest, openness(image, points)),
                      LiveFace(replace(gated, shape=None), encoding))
