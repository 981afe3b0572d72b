"""Quality verdicts: each defect is named in plain Chinese; a good frame is accepted."""

from __future__ import annotations

import numpy as np
import pytest

from core.settings import Settings
from testkit.synth_doc import Defect, make_frame
from verify.document_detect import DocumentKind, detect_document
from verify.document_quality import REASONS, assess

THRESHOLDS = Settings.from_env({}).document


def verdict_of(seed: int, kind: DocumentKind, defect: Defect) -> tuple[str, list[str]]:
    f = make_frame(np.random.default_rng(seed), kind, defect)
    q = assess(f.image, detect_document(f.image), THRESHOLDS)
    return q.verdict, q.reasons


@pytest.mark.parametrize("kind", ["a4", "booklet"])
def test_good_frame_is_accepted(kind: DocumentKind) -> None:
    assert verdict_of(21, kind, "good") == ("ok", [])


@pytest.mark.parametrize(
    ("defect", "reason"),
    [
        ("blur", "拍糊了，请保持不动"),
        ("glare", "反光太强，请调整角度"),
        ("too_dark", "太暗"),
        ("too_bright", "太亮，请避开强光"),
        ("cut_off", "材料没有拍全"),
        ("too_small", "材料太小，请拿近一些"),
        ("too_skewed", "请把材料放平"),
    ],
)
@pytest.mark.parametrize("kind", ["a4", "booklet"])
def test_defect_is_named_first(defect: Defect, reason: str, kind: DocumentKind) -> None:
    verdict, reasons = verdict_of(25, kind, defect)
    assert verdict == defect
    assert reasons[0] == reason


def test_nothing_in_view_asks_for_the_document() -> None:
    f = make_frame(np.random.default_rng(23), "a4", "good")
    desk = np.full_like(f.image, 90)
    q = assess(desk, detect_document(desk), THRESHOLDS)
    assert q.verdict == "not_found"
    assert q.reasons == [REASONS["not_found"]]


def test_thresholds_come_from_settings() -> None:
    f = make_frame(np.random.default_rng(24), "a4", "too_skewed")
    doc = detect_document(f.image)
    lenient = Settings.from_env(
        {"DOC_MAX_CORNER_ANGLE_DEG": "89", "DOC_MAX_SIDE_RATIO": "9"}
    ).document
    assert assess(f.image, doc, THRESHOLDS).verdict == "too_skewed"
    assert "too_skewed" not in assess(f.image, doc, lenient).defects
