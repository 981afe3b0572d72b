"""One relayed frame converted by several threads at once (recorder, identity, documents)
must neither crash nor hang the worker: PyAV's per-frame cached converter did both."""

from __future__ import annotations

import subprocess
import sys

from core.settings import ROOT

STRESS = """
import threading
import numpy as np
from av import VideoFrame
from media.frames import pixels

rgb = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
frame = VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
failures = []

def work(i):
    size = (320, 240) if i % 2 else (160, 120)
    try:
        for k in range(300):
            out = pixels(frame, "rgb24" if k % 2 else "gray", *size)
            assert out.shape[:2] == (size[1], size[0])
    except Exception as exc:
        failures.append(exc)

threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ok" if not failures else failures)
"""


def test_the_same_frame_converted_in_six_threads_at_once() -> None:
    # In a child process: the failure this guards against is a segfault or a deadlock.
    proc = subprocess.run([sys.executable, "-c", STRESS], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode,
                                                                  proc.stderr[-2000:])
