"""Reading the viewer's name back out of a replayed picture (pixels, no OCR: the machine
has no Chinese OCR model): the bright text pixels of the name box against the name as
the worker draws it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from media.viewer_mark import ViewerMark, burn, name_box

TEXT_LUMA = 150  # the mark's text is near white over a darkened band


def expected_text(mark: ViewerMark, width: int, height: int) -> npt.NDArray[np.bool_]:
    picture = np.zeros((height * 3 // 2, width), dtype=np.uint8)
    picture[height:] = 128
    burn(picture, width, height, mark, 0.0)
    x, y, w, h = name_box(width, height)
    return np.asarray(picture[y : y + h, x : x + w] > TEXT_LUMA)


def name_similarity(luma: npt.NDArray[np.uint8], mark: ViewerMark) -> float:
    """Overlap (intersection over union) of the picture's name-box text with `mark`'s;
    `luma` is the whole picture's luma plane."""
    height, width = luma.shape
    x, y, w, h = name_box(width, height)
    seen = luma[y : y + h, x : x + w] > TEXT_LUMA
    want = expected_text(mark, width, height)
    union = int((seen | want).sum())
    return int((seen & want).sum()) / union if union else 0.0
