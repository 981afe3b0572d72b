"""Pixels out of a relayed video frame, safe from any thread.

MediaRelay hands the same VideoFrame to every subscriber (recording, capture, identity,
documents). PyAV's `frame.reformat()` and `to_ndarray(format=...)` cache one converter on
the frame itself, so two threads converting the same frame race on it: the worker died of
that (a segfault in libavutil) during an identity check beside the recorder. Every
conversion here goes through a converter its caller owns.
"""

from __future__ import annotations

import numpy as np
from av import VideoFrame
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray


def pixels(frame: VideoFrame, format: str, width: int | None = None,
           height: int | None = None, converter: VideoReformatter | None = None
           ) -> NDArray[np.uint8]:
    """The frame as a contiguous array in `format` (rgb24, bgr24, gray, yuv420p), scaled
    when asked; `converter`: one the caller keeps to itself (one thread), else a fresh one."""
    own = converter if converter is not None else VideoReformatter()
    out = own.reformat(frame, width=width, height=height, format=format)
    return np.ascontiguousarray(out.to_ndarray(), np.uint8)
