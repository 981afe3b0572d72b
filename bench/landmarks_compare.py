"""Landmarks for liveness: dlib's 5 points (the project's path) against mediapipe FaceMesh.

Faces: the real photos in ../shared/testdata/faces, read in place, and the face-camera
frames the project's test kit makes of them (testkit.synth_id.live_frame; its yaw and pitch
go through turn_head). Both are judged with the project's own pose measure (FivePoints.pose,
LivenessSession): mediapipe's eye corners (33/133, 362/263) and nose base (2) are mapped
onto the 5 points.
mediapipe 0.10.x ships its face detection and landmark .tflite models inside the wheel
(1.x downloads them at run time). It is not a dependency of the project (docs/identity.md
says why), so the bench runs from a venv of its own:

    python3.11 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==0.10.14 "numpy<2" "opencv-python-headless<4.12" \
        dlib-bin face_recognition_models face_recognition "pydantic>=2.7,<3" pillow
    /tmp/mpvenv/bin/python bench/landmarks_compare.py

Without mediapipe it prints a skipped JSON line.

Runs pinned to one CPU. Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.verify_accuracy import MOVES, STILL, tilt_picture
from testkit.synth_id import jpeg, live_frame, load_head
from verify import face_model
from verify.face_model import RGB, FivePoints, Point
from verify.liveness import (
    Challenge,
    LivenessFrame,
    LivenessSession,
    _digest,
    _thumb,
    frame_points,
    observe,
)

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
Find = Callable[[RGB], tuple[int, FivePoints | None]]  # face count, 5 points if exactly one

_EYE_CORNERS = ((33, 133), (362, 263))
_NOSE_BASE = 2  # mediapipe's "noseBottom", where dlib's 5th point sits
# p1..p6 of the eye aspect ratio (Soukupova & Cech) on each eye of the 468-point mesh.
_EAR_POINTS = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))


class Mesh:
    """mediapipe FaceMesh seen as the project's 5 points, plus the full mesh of the last call."""

    def __init__(self, mp: Any, static: bool = True) -> None:
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=2, refine_landmarks=True
        )
        self.last: npt.NDArray[np.float64] | None = None

    def __call__(self, image: RGB) -> tuple[int, FivePoints | None]:
        faces = self._mesh.process(image).multi_face_landmarks or []
        self.last = None
        if len(faces) != 1:
            return len(faces), None
        h, w = image.shape[:2]
        pts = np.array([(p.x * w, p.y * h) for p in faces[0].landmark], np.float64)
        self.last = pts

        def at(i: int) -> Point:
            return float(pts[i, 0]), float(pts[i, 1])

        eyes = sorted(((at(a), at(b)) for a, b in _EYE_CORNERS), key=lambda e: e[0][0] + e[1][0])
        return 1, FivePoints(eyes[0], eyes[1], at(_NOSE_BASE))


def eye_aspect_ratio(pts: npt.NDArray[np.float64]) -> float:
    """Mean EAR of both eyes: eyelid gaps over eye width; falls towards 0 in a blink."""

    def d(i: int, j: int) -> float:
        return float(np.linalg.norm(pts[i] - pts[j]))

    return statistics.mean(
        (d(p2, p6) + d(p3, p5)) / (2 * d(p1, p4)) for p1, p2, p3, p4, p5, p6 in _EAR_POINTS
    )


def dlib_find(image: RGB) -> tuple[int, FivePoints | None]:
    """What `observe` runs: HOG on a copy at most 640 wide, then the 5 points."""
    boxes = face_model.detect(image, 0, 640)
    return (1, face_model.landmarks(image, boxes[0])[1]) if len(boxes) == 1 else (len(boxes), None)


def mesh_observe(find: Find, image: RGB, t: float = 0.0) -> LivenessFrame:
    """`observe` with another landmark source: same thumbnail, digest and scaling."""
    faces, points = find(image)
    if points is None:
        return LivenessFrame(t, faces, None, None, _digest(image))
    return LivenessFrame(t, 1, frame_points(points, image.shape[1]), _thumb(image, points),
                         _digest(image))


def shrink(image: RGB, factor: float) -> RGB:
    return np.asarray(cv2.resize(image, None, fx=factor, fy=factor,
                                 interpolation=cv2.INTER_AREA), np.uint8)


def gamma(image: RGB, g: float) -> RGB:
    lut = (255 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return np.asarray(cv2.LUT(image, lut), np.uint8)


def noisy(image: RGB, sigma: float, rng: np.random.Generator) -> RGB:
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def rotate(image: RGB, deg: float) -> RGB:
    """Rotated so the eye line's angle (y down, as FivePoints.pose) grows by `deg`."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -deg, 1.0)
    return np.asarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE), np.uint8)


def face_width(image: RGB) -> int | None:
    """dlib's HOG box width: the one face size both detectors are scaled by."""
    boxes = face_model.detect(image, 0, 640) or face_model.detect(image, 1, 640)
    return max(b.width for b in boxes) if boxes else None


def jitter(find: Find, frame: RGB, rng: np.random.Generator, n: int = 10) -> dict[str, float]:
    """Spread over n independent noise draws (sigma 4) of one frame."""
    found = [find(noisy(frame, 4.0, rng))[1] for _ in range(n)]
    pts = [p for p in found if p is not None]
    if len(pts) < n:
        return {}
    iod = statistics.mean(p.eye_distance for p in pts)
    xy = np.array([[np.mean(p.eye_a, axis=0), np.mean(p.eye_b, axis=0), p.nose] for p in pts])
    spread = np.sqrt(xy.var(axis=0, ddof=1).sum(axis=1)) / iod  # per point, in IOD
    poses = np.array([p.pose() for p in pts])
    return {"points_std_iod": float(spread.mean()), "yaw_std": float(poses[:, 0].std(ddof=1)),
            "pitch_std": float(poses[:, 1].std(ddof=1))}


def liveness_runs(see: Callable[[RGB], LivenessFrame], head: RGB) -> dict[str, list[str]]:
    """bench/verify_accuracy.py's synthetic sequences, each frame landmarked once."""
    challenges: list[list[Challenge]] = [["left", "right"], ["nod", "left"], ["right", "nod"]]
    out: dict[str, list[str]] = {"follows": [], "wrong_order": [], "still": [], "tilted": []}

    def judge(frames: Sequence[LivenessFrame], challenge: list[Challenge], fps: float) -> str:
        session = LivenessSession(challenge)
        for i, frame in enumerate(frames):
            if (v := session.feed(replace(frame, t=i / fps))).status != "pending":
                return v.status
        return session.finish().status

    for ch in challenges:
        poses = STILL + MOVES[ch[0]] + MOVES[ch[1]]
        images = [live_frame(head, yaw=y, pitch=p, shift=(0.01 * np.sin(i), 0.0), seed=i)
                  for i, (y, p, _) in enumerate(poses)]
        frames = [see(im) for im in images]
        out["follows"].append(judge(frames, ch, 10.0))
        out["wrong_order"].append(judge(frames, ch[::-1], 10.0))
    rng = np.random.default_rng(11)
    still = [live_frame(head, shift=(rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)), seed=i)
             for i in range(26)]
    out["still"].append(judge([see(im) for im in still], ["left", "right"], 2.0))
    photo = live_frame(head, noise=0.0)
    angles = [0.0] * 4 + [0.25, 0.5, 0.7, 0.5, 0.25, 0.0, 0.0, -0.25, -0.5, -0.7, -0.5, -0.25]
    tilted = [see(tilt_picture(photo, a)) for a in angles * 2]
    out["tilted"] += [judge(tilted, ch, 2.5) for ch in challenges]
    return out


def median_ms(see: Callable[[RGB], object], image: RGB, n: int = 20) -> float:
    see(image)  # warm-up: model load
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        see(image)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _med(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _mean(xs: Sequence[float]) -> float | None:
    return statistics.mean(xs) if xs else None


def main() -> None:
    if not FACES.is_dir():
        print(json.dumps({"skipped": f"no test faces at {FACES}"}))
        return
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging to stderr
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
    try:
        import mediapipe as mp  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as exc:
        print(json.dumps({"skipped": f"mediapipe not importable: {exc}"}))
        return
    # One core, one thread: the figures are per core on the 2-core machine.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    mesh = Mesh(mp)
    finders: dict[str, Find] = {"dlib": dlib_find, "mediapipe": mesh}
    observers: dict[str, Callable[[RGB], LivenessFrame]] = {
        "dlib": partial(observe, t=0.0), "mediapipe": partial(mesh_observe, mesh)}
    rng = np.random.default_rng(7)

    photos: dict[str, RGB] = {
        p.name: np.asarray(Image.open(p).convert("RGB"), np.uint8)
        for p in sorted(FACES.glob("*.jpg"))
    }
    heads: dict[str, RGB] = {}
    for name in photos:
        with contextlib.suppress(ValueError):  # no dlib face to crop on: photo rows only
            heads[name] = load_head(FACES / name)
    widths = {n: face_width(im) for n, im in photos.items()}
    # In live_frame the head crop is face_width_frac * 640 wide; the face is a share of it.
    face_share = statistics.median(
        w / h.shape[1] for h in heads.values() if (w := face_width(h)) is not None
    )
    typical = {n: live_frame(h, seed=1) for n, h in heads.items()}

    variants: dict[str, list[RGB]] = {"original": list(photos.values())}
    for px in (60, 40, 30):
        variants[f"photo_face_{px}px"] = [
            shrink(im, px / w) for n, im in photos.items() if (w := widths[n]) is not None
        ]
    variants[f"frame_typical_{round(0.45 * 640 * face_share)}px"] = list(typical.values())
    for px in (80, 60, 40):
        variants[f"frame_face_{px}px"] = [
            live_frame(h, face_width_frac=px / (640 * face_share), seed=2) for h in heads.values()
        ]
    variants["frame_gamma_2.5"] = [gamma(f, 2.5) for f in typical.values()]
    variants["frame_gamma_4"] = [gamma(f, 4.0) for f in typical.values()]
    variants["frame_noise_s15"] = [noisy(f, 15.0, rng) for f in typical.values()]
    variants["frame_jpeg_q30"] = [jpeg(f, 30) for f in typical.values()]

    result: dict[str, Any] = {"photos": len(photos), "heads": len(heads),
                              "versions": {"mediapipe": mp.__version__, "cv2": cv2.__version__,
                                           "numpy": np.__version__}}
    print(f"{len(photos)} photos, {len(heads)} head crops; typical kiosk face "
          f"{0.45 * 640 * face_share:.0f} px wide in 640x480")
    print(f"\n{'detection (>=1 face)':<28}{'dlib':>10}{'mediapipe':>12}")
    detection: dict[str, dict[str, int]] = {}
    for name, images in variants.items():
        row = {k: sum(f(im)[0] >= 1 for im in images) for k, f in finders.items()}
        detection[name] = {"n": len(images), **row}
        print(f"{name:<28}{row['dlib']:>7}/{len(images):<2}{row['mediapipe']:>9}/{len(images):<2}")
    result["detection"] = detection

    per: dict[str, dict[str, Any]] = {k: {} for k in finders}
    for k, find in finders.items():
        jit = [j for f in typical.values() if (j := jitter(find, f, rng))]
        per[k]["jitter"] = {m: _r(_med([j[m] for j in jit]), 4) for m in
                            ("points_std_iod", "yaw_std", "pitch_std")} | {"heads": len(jit)}
        errors: list[float] = []
        misses = 0
        for head in heads.values():
            base = find(live_frame(head, seed=3))[1]
            for deg in (-20, -15, -10, -5, 5, 10, 15, 20):
                got = find(live_frame(rotate(head, deg), seed=3))[1]
                if base is None or got is None:
                    misses += 1
                    continue
                errors.append(abs(got.pose()[2] - base.pose()[2] - deg))
        per[k]["roll"] = {"mean_abs_err_deg": _r(_mean(errors), 2),
                          "max_abs_err_deg": _r(max(errors, default=None), 2), "misses": misses,
                          "frames": 8 * len(heads)}
        sums, pdiff, turns = [], [], []
        for head in heads.values():
            a = find(live_frame(head, seed=4))[1]
            b = find(live_frame(np.ascontiguousarray(head[:, ::-1]), seed=4))[1]
            if a is not None and b is not None:
                sums.append(abs(a.pose()[0] + b.pose()[0]))
                pdiff.append(abs(a.pose()[1] - b.pose()[1]))
            moved = [find(live_frame(head, yaw=y, pitch=p, seed=5))[1]
                     for y, p in ((0.35, 0.0), (-0.35, 0.0), (0.0, 0.3))]
            if a is not None and all(m is not None for m in moved):
                turns.append([m.pose()[i] - a.pose()[i]
                              for m, i in zip(moved, (0, 0, 1), strict=True) if m is not None])
        per[k]["mirror"] = {"mean_abs_yaw_sum": _r(_mean(sums), 4),
                            "mean_abs_pitch_diff": _r(_mean(pdiff), 4),
                            "pairs": len(sums)}
        per[k]["turn_head"] = {
            "dyaw_left_0.35rad": _r(_med([t[0] for t in turns])),
            "dyaw_right_-0.35rad": _r(_med([t[1] for t in turns])),
            "dpitch_nod_0.3rad": _r(_med([t[2] for t in turns])), "heads": len(turns)}
        runs: dict[str, list[str]] = {}
        for head in heads.values():
            for kind, verdicts in liveness_runs(observers[k], head).items():
                runs.setdefault(kind, []).extend(verdicts)
        per[k]["liveness_passed"] = {kind: f"{v.count('pass')}/{len(v)}" for kind, v in
                                     runs.items()}
    result |= per

    def ear_of(image: RGB) -> float | None:
        mesh(image)
        return None if mesh.last is None else _r(eye_aspect_ratio(mesh.last))

    ears = {n: {"photo": ear_of(im), "frame": ear_of(typical[n]) if n in typical else None}
            for n, im in photos.items()}
    result["mediapipe_ear_open_eyes"] = ears

    frame = next(iter(typical.values()))
    # The whole liveness observation (detect, landmarks, thumbnail, digest) per frame.
    timing = {k: round(median_ms(see, frame), 1) for k, see in observers.items()}
    tracking = partial(mesh_observe, Mesh(mp, static=False))
    timing["mediapipe_tracking"] = round(median_ms(tracking, frame), 1)
    result["ms_per_640x480_frame"] = timing

    rows: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
        ("jitter: eye/nose std / IOD", lambda d: d["jitter"]["points_std_iod"]),
        ("jitter: yaw std", lambda d: d["jitter"]["yaw_std"]),
        ("jitter: pitch std", lambda d: d["jitter"]["pitch_std"]),
        ("roll: mean |error| deg", lambda d: d["roll"]["mean_abs_err_deg"]),
        ("roll: max |error| deg", lambda d: d["roll"]["max_abs_err_deg"]),
        ("roll: frames missed", lambda d: f"{d['roll']['misses']}/{d['roll']['frames']}"),
        ("mirror: mean |yaw+yaw'|", lambda d: d["mirror"]["mean_abs_yaw_sum"]),
        ("mirror: mean |pitch-pitch'|", lambda d: d["mirror"]["mean_abs_pitch_diff"]),
        ("turn +0.35 rad: dyaw", lambda d: d["turn_head"]["dyaw_left_0.35rad"]),
        ("turn -0.35 rad: dyaw", lambda d: d["turn_head"]["dyaw_right_-0.35rad"]),
        ("nod 0.3 rad: dpitch", lambda d: d["turn_head"]["dpitch_nod_0.3rad"]),
        *[(f"liveness {kind} passed", lambda d, kind=kind: d["liveness_passed"][kind])
          for kind in ("follows", "wrong_order", "still", "tilted")],
    ]
    print(f"\n{'measure':<30}{'dlib':>12}{'mediapipe':>12}")
    for label, get in rows:
        print(f"{label:<30}{get(per['dlib'])!s:>12}{get(per['mediapipe'])!s:>12}")
    print(f"{'ms per 640x480 frame':<30}{timing['dlib']:>12}{timing['mediapipe']:>12}"
          f"  (mediapipe tracking mode {timing['mediapipe_tracking']})")
    print("\nmediapipe EAR, open eyes (photo / kiosk frame):")
    for name, e in ears.items():
        print(f"  {name:<24}{e['photo']!s:>8}{e['frame']!s:>8}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
