"""Face material made once per run from ../shared/testdata/faces: head crops per photo.

Photos of the same person that are the same picture at other sizes are left out, so a
"same person" pair is always two different photographs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import FACES
from verify import face_model
from verify.synth_id import RGB, head_crop_at

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg")


def person(name: str) -> str:
    return name.removesuffix(".jpg").rstrip("0123456789")


def load_head(path: Path) -> RGB:
    photo = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
    # Find the face on a quarter-size copy: these portraits have large faces.
    scale = 0.25
    small = np.asarray(cv2.resize(photo, None, fx=scale, fy=scale), np.uint8)
    box = max(face_model.detect(small), key=lambda b: b.width).scaled(1 / scale)
    _, points = face_model.landmarks(photo, box)
    return head_crop_at(photo, points.nose, points.eye_distance)


@pytest.fixture(scope="session")
def face_heads() -> dict[str, RGB]:
    if not FACES.is_dir():
        pytest.skip(f"test faces not found at {FACES} (see ../shared/testdata/README.md)")
    return {name: load_head(FACES / name) for name in PHOTOS}
