"""Document detection and quality on real pictures of paper (not generated ones).

The pictures are not in the repository (their licences ask for attribution, and they are
large): `--dir` names a folder of them, `--labels` a JSON file saying, for each file, what
a person sees in it — `outline` (one whole document that should be outlined and may be
called good), `cut_off` (the document runs off the picture: must not be called good), or
`none` (no document). A labels file records where its pictures come from and their
licence (see bench/real_documents/). Prints a row per picture, writes a contact sheet with
the outline drawn (`--sheet`, to check the labels and outlines by eye), last line JSON.

    .venv/bin/python bench/real_documents.py --dir DIR [--labels FILE] [--sheet /tmp/s.png]

(--labels defaults to bench/real_documents/receipts.json, flatbed scans of receipts;
bench/real_documents/camera_photos.json labels camera photos of pages and cards. Without
--dir it says so and stops.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import Settings
from verify.document_detect import detect_document
from verify.document_quality import assess
from verify.image_files import read_bgr

TILE = 360
LABELS = Path(__file__).resolve().parent / "real_documents" / "receipts.json"


def as_camera(image: np.ndarray, long_side: int) -> np.ndarray:
    """The picture at the size a document camera's still has (1080p: 1920 px across)."""
    scale = long_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return np.asarray(cv2.resize(image, None, fx=scale, fy=scale,
                                 interpolation=cv2.INTER_AREA), np.uint8)


def tile(image: np.ndarray, corners: np.ndarray | None, caption: str) -> np.ndarray:
    scale = TILE / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if corners is not None:
        pts = (corners * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(small, [pts], True, (0, 0, 255), 3)
    out = np.full((TILE + 24, TILE, 3), 255, np.uint8)
    out[:small.shape[0], :small.shape[1]] = small
    cv2.putText(out, caption[:44], (4, TILE + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, help="the pictures (not in the repository)")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--long-side", type=int, default=1920)
    args = ap.parse_args()
    if args.dir is None or not args.dir.is_dir():
        reason = f"no pictures: give --dir (see {args.labels} for where they come from)"
        print(reason, file=sys.stderr)
        print(json.dumps({"bench": "real_documents", "skipped": reason}, ensure_ascii=False))
        return
    spec = json.loads(args.labels.read_text())
    labels: dict[str, str] = spec["pictures"]
    th = Settings.from_env({}).document
    rows: list[dict[str, Any]] = []
    tiles: list[np.ndarray] = []
    for name, expect in sorted(labels.items()):
        path = args.dir / name
        if not path.exists():
            print(f"missing: {path}", file=sys.stderr)
            continue
        frame = as_camera(read_bgr(path), args.long_side)
        started = time.perf_counter()
        doc = detect_document(frame)
        quality = assess(frame, doc, th)
        ms = (time.perf_counter() - started) * 1000
        verdict = quality.verdict
        good = bool(quality.ok)
        rows.append({"file": name, "expect": expect, "found": doc is not None,
                     "verdict": verdict, "good": good, "ms": round(ms, 1),
                     "outline_right": spec.get("outlines", {}).get(name)})
        print(f"{name:44s} {expect:8s} found={doc is not None!s:5s} verdict={verdict:14s} "
              f"good={good!s:5s} {ms:6.0f} ms")
        tiles.append(tile(frame, None if doc is None else doc.corners,
                          f"{expect} -> {verdict}"))
    if args.sheet and tiles:
        per_row = 6
        blank = np.full_like(tiles[0], 255)
        while len(tiles) % per_row:
            tiles.append(blank)
        sheet = np.vstack([np.hstack(tiles[i:i + per_row])
                           for i in range(0, len(tiles), per_row)])
        cv2.imwrite(str(args.sheet), sheet)
    outline = [r for r in rows if r["expect"] == "outline"]
    judged = [r for r in rows if r["outline_right"] is not None]
    summary = {
        "bench": "real_documents", "set": spec.get("source", ""), "pictures": len(rows),
        "by_label": dict(Counter(r["expect"] for r in rows)),
        "verdicts": dict(Counter(r["verdict"] for r in rows)),
        "whole_documents_found": sum(r["found"] for r in outline),
        "whole_documents": len(outline),
        "outlines_right": sum(bool(r["outline_right"]) for r in judged),
        "outlines_judged": len(judged),
        "wrong_outline_called_good": sum(
            1 for r in judged if r["good"] and not r["outline_right"]),
        "cut_off_called_good": sum(1 for r in rows if r["expect"] == "cut_off" and r["good"]),
        "no_document_called_good": sum(1 for r in rows if r["expect"] == "none" and r["good"]),
        "ms_p50": round(float(np.median([r["ms"] for r in rows])), 1) if rows else None,
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
