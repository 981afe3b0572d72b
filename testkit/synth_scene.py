"""Camera-like frames with no document at all, for the "没有找到材料" verdict.

The same cluttered desks as `testkit.synth_doc` (wood grain, pens, cups, sticky notes), plus
the things a detector mistakes for paper: a large pale box or tabletop running off the
frame, and a bright floor beyond the table's edge. Deterministic for a given generator.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from testkit import synth_doc

EmptyKind = Literal["clutter", "pale_box", "two_tone"]
EMPTY_KINDS: tuple[EmptyKind, ...] = ("clutter", "pale_box", "two_tone")


def empty_scene(rng: np.random.Generator, kind: EmptyKind) -> NDArray[np.uint8]:
    """One 1280x720 BGR frame of a desk with no document on it."""
    img = synth_doc._background(rng)
    w, h = synth_doc.FRAME_SIZE
    if kind == "pale_box":
        x0, y0 = int(rng.integers(w // 2, w - 100)), int(rng.integers(-50, h // 2))
        pale = tuple(float(c) for c in rng.uniform(180, 240, 3))
        cv2.rectangle(img, (x0, y0), (w + 50, y0 + int(rng.integers(200, 500))), pale, -1)
    elif kind == "two_tone":
        cut = int(rng.integers(h // 3, 2 * h // 3))
        img[cut:] = img[cut:] * 0.3 + 170
    img = img * synth_doc._lighting(rng)
    img = np.asarray(cv2.GaussianBlur(img, (0, 0), 0.7), np.float32)
    img = img + rng.normal(0, 2.5, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)
