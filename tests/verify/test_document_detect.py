"""Finding the document: corners within 2 % of its diagonal, the right kind, a flat scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from testkit.synth_doc import Defect, SyntheticFrame, make_frame
from verify.document_detect import (
    KIND_ASPECT,
    DocumentKind,
    detect_document,
    scan,
    scan_size,
)


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Largest corner distance as a share of the document diagonal (any starting corner)."""
    diag = float(np.linalg.norm(truth[2] - truth[0]))
    return (
        min(
            float(np.max(np.linalg.norm(np.roll(found, s, axis=0) - truth, axis=1)))
            for s in range(4)
        )
        / diag
    )


def frame(
    seed: int, kind: DocumentKind, defect: Defect, faces: Path | None = None
) -> SyntheticFrame:
    return make_frame(np.random.default_rng(seed), kind, defect, faces)


@pytest.mark.parametrize("kind", ["a4", "booklet"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_page_corners_found_within_two_percent(kind: DocumentKind, seed: int) -> None:
    f = frame(seed, kind, "good")
    doc = detect_document(f.image)
    assert doc is not None
    assert corner_error(doc.corners, f.corners) < 0.02
    assert doc.kind == kind


@pytest.mark.parametrize("seed", [4, 5])
def test_id_card_found_and_named(seed: int, faces: Path) -> None:
    f = frame(seed, "id_card", "good", faces)
    doc = detect_document(f.image)
    assert doc is not None
    assert corner_error(doc.corners, f.corners) < 0.02
    assert doc.kind == "id_card"


@pytest.mark.parametrize("defect", ["blur", "glare", "too_dark"])
def test_corners_still_found_through_blur_glare_and_dim_light(defect: Defect) -> None:
    f = frame(7, "a4", defect)
    doc = detect_document(f.image)
    assert doc is not None
    assert corner_error(doc.corners, f.corners) < 0.02


def test_scan_is_upright_with_the_kinds_aspect_and_150_dpi() -> None:
    f = frame(8, "a4", "good")
    doc = detect_document(f.image)
    assert doc is not None
    flat = scan(f.image, doc)
    h, w = flat.shape[:2]
    assert (w, h) == scan_size("a4") == (1240, 1754)  # 150 dpi
    assert abs(h / w - KIND_ASPECT["a4"]) < 0.01
    # the title sits in the top part of an upright page: more ink there than at the very bottom
    gray = flat.mean(axis=2)
    assert gray[: h // 5].min() < 100


def test_empty_desk_has_no_document() -> None:
    f = frame(9, "a4", "good")
    desk = f.image.copy()
    desk[:] = np.median(f.image.reshape(-1, 3), axis=0).astype(np.uint8)
    assert detect_document(desk) is None
