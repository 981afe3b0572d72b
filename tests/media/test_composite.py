"""The recording's picture: a camera that stopped is shown as a gap, in words."""

from __future__ import annotations

import numpy as np

from media.composite import FACE_BOX, HEIGHT, WIDTH, compose, gap_tile, watermark_i420


def test_a_gap_tile_fills_its_box_and_carries_words() -> None:
    _, _, w, h = FACE_BOX
    tile = gap_tile(w, h)
    assert tile.shape == (h * 3 // 2, w)
    luma = tile[:h]
    assert luma.std() > 5  # the white words on the dark red


def test_the_composite_shows_the_gap_where_the_face_was() -> None:
    _, _, w, h = FACE_BOX
    mark = watermark_i420(("编号 x", "终端 y", "坐席 z", "2026-01-01 00:00:00 UTC"))
    picture = compose(gap_tile(w, h), None, None, mark)
    luma = picture[:HEIGHT].reshape(HEIGHT, WIDTH)
    assert np.array_equal(luma[:h, :w], gap_tile(w, h)[:h])
