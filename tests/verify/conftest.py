"""Face material made once per run from ../shared/testdata/faces: head crops per photo.

Photos of the same person that are the same picture at other sizes are left out, so a
"same person" pair is always two different photographs.
"""

from __future__ import annotations

import pytest

from testkit.synth_id import RGB, load_head
from tests.conftest import FACES

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg")


@pytest.fixture(scope="session")
def face_heads() -> dict[str, RGB]:
    if not FACES.is_dir():
        pytest.skip(f"test faces not found at {FACES} (see ../shared/testdata/README.md)")
    return {name: load_head(FACES / name) for name in PHOTOS}
