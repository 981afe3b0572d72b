"""Best frame: capture only once the document is still, and then the sharpest good frame."""

from __future__ import annotations

import numpy as np

from core.settings import Settings
from testkit.synth_doc import make_frame
from verify.best_frame import AssessedFrame, choose_best
from verify.document_detect import detect_document
from verify.document_quality import assess

TH = Settings.from_env({}).document


def assessed(image: np.ndarray) -> AssessedFrame:
    doc = detect_document(image)
    return AssessedFrame(doc, assess(image, doc, TH))


def shifted(image: np.ndarray, dx: int) -> np.ndarray:
    return np.roll(image, dx, axis=1)


def test_still_document_is_captured_at_its_sharpest() -> None:
    rng = np.random.default_rng(31)
    good = make_frame(rng, "a4", "good").image
    moving = [assessed(shifted(good, 40 * i)) for i in range(3)]
    still = [assessed(good) for _ in range(3)]
    window = [*moving, *still]
    best = choose_best(window, TH)
    assert best.index is not None and best.index >= 3
    assert best.stable


def test_moving_document_is_not_captured() -> None:
    rng = np.random.default_rng(32)
    good = make_frame(rng, "a4", "good").image
    window = [assessed(shifted(good, 40 * i)) for i in range(4)]
    best = choose_best(window, TH)
    assert best.index is None
    assert best.reasons == ("请保持不动",)


def test_window_of_dark_frames_says_what_to_fix() -> None:
    rng = np.random.default_rng(33)
    dark = make_frame(rng, "booklet", "too_dark").image
    best = choose_best([assessed(dark) for _ in range(4)], TH)
    assert best.index is None
    assert best.reasons == ("太暗",)
