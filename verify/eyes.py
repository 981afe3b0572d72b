"""How open the eyes are, from the 5-point eye corners alone: the share of vertical edges.

An open eye shows the iris against the white of the eye, so the strip between the corners
is full of vertical edges; a closed one shows the lid and its lashes, horizontal lines.
The share |dI/dx| / (|dI/dx| + |dI/dy|) in that strip does not depend on brightness, skin
tone, scale or roll (the strip is cut along the eye axis). It is only compared with the
same person's own value a moment earlier, never with a fixed number. (dlib's 68-point
model would give eyelid points, but its licence does not allow commercial use.)
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from verify.face_model import RGB, FivePoints, Point

_STRIP = (32, 16)  # px of the aligned strip: along the eye axis, across it
_ALONG = 0.8  # of the corner-to-corner width, centred (the corners themselves are skin)
_ACROSS = 0.5  # of that width, centred on the corners' line


def _strip(gray: npt.NDArray[np.uint8], corners: tuple[Point, Point]) -> npt.NDArray[np.float32]:
    a, b = (np.asarray(c, np.float32) for c in sorted(corners))
    width = float(np.linalg.norm(b - a)) or 1.0
    u = (b - a) / width
    v = np.array([-u[1], u[0]], np.float32)
    c = (a + b) / 2
    half_u, half_v = u * width * _ALONG / 2, v * width * _ACROSS / 2
    src = np.array([c - half_u - half_v, c + half_u - half_v, c - half_u + half_v], np.float32)
    w, h = _STRIP
    dst = np.array([[0, 0], [w, 0], [0, h]], np.float32)
    matrix = cv2.getAffineTransform(src, dst)
    out = cv2.warpAffine(gray, matrix, _STRIP, flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.GaussianBlur(out.astype(np.float32), (0, 0), 0.8), np.float32)


def openness(image: RGB, points: FivePoints) -> float:
    """0..1, the mean of both eyes; about 0.35-0.5 open, falling by half when closed."""
    gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), np.uint8)
    shares = []
    for corners in (points.eye_a, points.eye_b):
        strip = _strip(gray, corners)
        gx = float(np.abs(cv2.Sobel(strip, cv2.CV_32F, 1, 0)).sum())
        gy = float(np.abs(cv2.Sobel(strip, cv2.CV_32F, 0, 1)).sum())
        shares.append(gx / (gx + gy) if gx + gy > 1e-6 else 0.0)
    return float(np.mean(shares))
