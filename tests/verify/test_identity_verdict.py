"""The check's verdict from its parts, and the card samples the kiosk guidance comes from:
weak evidence goes to review, only a clear mismatch or a still picture fails."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import cv2
import numpy as np
import pytest

from testkit.synth_id import (
    EFFECTS,
    PORTRAIT_BOX,
    RGB,
    CardFields,
    live_frame,
    photograph_card,
    render_card,
)
from verify.face_config import FaceMatchConfig
from verify.face_match import REASON_SEVERAL, MatchVerdict, decide_encoded
from verify.identity_samples import CardGuidance, card_sample, face_sample
from verify.identity_verdict import REASON_NO_FACE, combine
from verify.idnumber import with_check_digit
from verify.liveness import (
    REASON_FROZEN,
    REASON_PASS,
    REASON_STATIC,
    REASON_TIMEOUT,
    LivenessVerdict,
)


def _match(decision: str, reasons: list[str]) -> MatchVerdict:
    return MatchVerdict(decision, 0.5, [0, 1], [0.5, 0.5], {}, reasons, 120, True,  # type: ignore[arg-type]
                        0.53, 0.6)


def _live(status: str, reason: str) -> LivenessVerdict:
    return LivenessVerdict(status, reason, [], "", 30, 6.0)  # type: ignore[arg-type]


def test_both_parts_passing_pass() -> None:
    v = combine(_match("pass", ["人证比对一致"]), _live("pass", REASON_PASS), 30, 0)
    assert v.decision == "pass"


def test_a_tilted_picture_or_a_frozen_stream_fails_even_with_a_matching_face() -> None:
    tilted = LivenessVerdict("fail", REASON_STATIC, ["left", "nod"], "", 30, 6.0)
    v = combine(_match("pass", ["人证比对一致"]), tilted, 30, 0)
    assert v.decision == "fail" and v.reasons[0] == REASON_STATIC
    frozen = combine(_match("pass", ["人证比对一致"]), _live("fail", REASON_FROZEN), 30, 0)
    assert frozen.decision == "fail"


def test_a_face_that_never_moved_in_time_is_for_a_person_to_judge() -> None:
    v = combine(_match("pass", ["人证比对一致"]), _live("fail", REASON_STATIC), 30, 0)
    assert v.decision == "review" and v.reasons[0] == REASON_STATIC


def test_a_challenge_not_done_in_time_goes_to_review_not_fail() -> None:
    v = combine(_match("pass", ["人证比对一致"]), _live("fail", REASON_TIMEOUT), 30, 0)
    assert v.decision == "review" and REASON_TIMEOUT in v.reasons


def test_several_faces_or_none_go_to_review_with_the_reason() -> None:
    few = _match("review", ["可用的人脸画面不足"])
    several = combine(few, _live("fail", REASON_TIMEOUT), 0, 20)
    assert several.decision == "review" and several.reasons == [REASON_SEVERAL]
    nobody = combine(few, _live("fail", REASON_TIMEOUT), 0, 0)
    assert nobody.decision == "review" and nobody.reasons == [REASON_NO_FACE]
    some = combine(_match("pass", ["人证比对一致"]), _live("pass", REASON_PASS), 25, 3)
    assert some.decision == "review" and REASON_SEVERAL in some.reasons


def test_a_mismatch_fails() -> None:
    v = combine(_match("fail", ["人证比对不一致"]), _live("pass", REASON_PASS), 30, 0)
    assert v.decision == "fail"


def test_the_card_guidance_says_what_to_change(face_heads: dict[str, RGB]) -> None:
    config = FaceMatchConfig()
    today = date(2026, 12, 1)
    desk = photograph_card(render_card(None), EFFECTS["mild"])  # a card without a photo
    dark = (desk * 0.1).astype("uint8")
    assert card_sample(dark, today, config).guidance == CardGuidance.TOO_DARK
    empty = desk.copy()
    empty[:] = (90, 80, 70)
    assert card_sample(empty, today, config).guidance == CardGuidance.NO_CARD
    number = with_check_digit("11010519800101001")
    fields = CardFields(number=number)
    card = photograph_card(render_card(face_heads["obama2.jpg"], fields), EFFECTS["mild"])
    # The card moving while the camera exposes.
    moved = np.asarray(cv2.GaussianBlur(card, (0, 0), 4), np.uint8)
    assert card_sample(moved, today, config).guidance == CardGuidance.HOLD_STILL
    taken = card_sample(card, today, config)
    assert taken.guidance == CardGuidance.TAKEN and taken.portrait is not None
    assert taken.number is not None and taken.number.number == number


def _exposed(image: RGB, gain: float) -> RGB:
    return np.asarray(np.clip(image.astype(np.float32) * gain, 0, 255), np.uint8)


def _spot_on_face(card: RGB, radius: float) -> RGB:
    """A specular spot of light on the card's portrait, before the camera sees it."""
    x0, y0, x1, y1 = PORTRAIT_BOX
    yy, xx = np.mgrid[0:card.shape[0], 0:card.shape[1]]
    cx, cy = (x0 + x1) / 2, y0 + (y1 - y0) * 0.45
    spot = np.minimum(1.0, 1.6 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2)))
    lit = card.astype(np.float32) + (255 - card.astype(np.float32)) * spot[..., None]
    return np.asarray(np.clip(lit, 0, 255), np.uint8)


def test_saturation_is_glare_only_where_it_spoils_the_portrait(
        face_heads: dict[str, RGB]) -> None:
    config = FaceMatchConfig()
    today = date(2026, 12, 1)
    plain = EFFECTS["mild"]
    card = photograph_card(render_card(face_heads["obama2.jpg"]), plain)
    # A pale card a little over-exposed: most of it is clipped white, the face is fine.
    assert card_sample(_exposed(card, 1.15), today, config).guidance == CardGuidance.TAKEN
    # Far too much light: the applicant is told so, not to tilt the card.
    assert card_sample(_exposed(card, 1.6), today, config).guidance == CardGuidance.TOO_BRIGHT
    # A spot of light on the portrait: glare, whether or not the face is still found.
    for radius in (30, 60):
        lit = photograph_card(_spot_on_face(render_card(face_heads["obama2.jpg"]), radius),
                              replace(plain, glare=0.0))
        assert card_sample(lit, today, config).guidance == CardGuidance.GLARE, radius


@pytest.mark.parametrize("effect", ["strong"])
def test_an_old_small_card_photo_of_the_same_person_is_not_failed(
        face_heads: dict[str, RGB], effect: str) -> None:
    """A small, worn card photo encodes noisily: the genuine applicant lands in review at
    worst, never in 不通过."""
    config = FaceMatchConfig()
    card = photograph_card(render_card(face_heads["obama2.jpg"]), EFFECTS[effect], seed=3)
    taken = card_sample(card, date(2026, 12, 1), config)
    assert taken.portrait is not None, taken.guidance
    faces = [face_sample(live_frame(face_heads["obama.jpg"], seed=i), i / 8, config, True).live
             for i in range(4)]
    verdict = decide_encoded(taken.portrait, faces, config)
    assert verdict.decision != "fail", verdict.to_dict()
