"""Sharpness of a grey image: the variance of its Laplacian (high for crisp edges)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy.typing as npt


def laplacian_variance(gray: npt.NDArray[Any]) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
