"""A view with no document is "没有找到材料", never "材料没有拍全" or "材料太小", and an
outlined thing that is no paper is never called good; real documents keep their verdicts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from testkit.synth_doc import make_frame
from testkit.synth_scene import EMPTY_KINDS, EmptyKind, empty_scene
from verify.document_config import DocumentThresholds
from verify.document_detect import detect_document
from verify.document_quality import assess

TH = DocumentThresholds()


@pytest.mark.parametrize("kind", EMPTY_KINDS)
def test_an_empty_desk_is_no_document_found(kind: EmptyKind) -> None:
    verdicts: Counter[str] = Counter()
    for i in range(20):
        frame = empty_scene(np.random.default_rng(2000 + i), kind)
        verdicts[assess(frame, detect_document(frame), TH).verdict] += 1
    assert verdicts["ok"] == 0
    assert verdicts["not_found"] >= 18, verdicts  # the rest: a sticky note "too small"
    assert verdicts["cut_off"] == 0, verdicts


@pytest.mark.parametrize(("kind", "defect"), [
    ("a4", "good"), ("a4", "cut_off"), ("a4", "too_skewed"), ("a4", "too_small"),
    ("booklet", "cut_off"), ("id_card", "good"), ("id_card", "cut_off")])
def test_documents_keep_their_verdicts(kind: str, defect: str, faces: Path) -> None:
    verdicts: Counter[str] = Counter()
    for i in range(8):
        f = make_frame(np.random.default_rng(i), kind, defect,  # type: ignore[arg-type]
                       faces_dir=faces)
        verdicts[assess(f.image, detect_document(f.image), TH).verdict] += 1
    expected = "ok" if defect == "good" else defect
    assert verdicts[expected] >= 7, verdicts
