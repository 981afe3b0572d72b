"""Document capture benchmark: detection accuracy, verdict confusion, ID numbers, speed.

Generates camera-like 1280x720 frames (testkit.synth_doc) of A4 pages, booklet pages and
ID cards with one defect each, runs detection + quality on one core, and reads the ID
number off every card that was found. Prints a confusion table and the figures; the last
line is one JSON object.

    .venv/bin/python bench/documents.py [--per-cell 24] [--extra-cards 80] [--seed 2026]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import Settings
from testkit.synth_doc import DEFECTS, SyntheticFrame, make_frame, render_document, today
from verify.document_detect import DocumentKind, detect_document, scan
from verify.document_quality import REASONS, assess
from verify.id_ocr import read_id_number

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
KINDS: tuple[DocumentKind, ...] = ("a4", "booklet", "id_card")
VERDICTS = ("ok", *REASONS)


def corner_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Largest corner distance as a share of the document's diagonal (any start corner)."""
    diag = float(np.linalg.norm(truth[2] - truth[0]))
    return (
        min(
            float(np.max(np.linalg.norm(np.roll(found, s, axis=0) - truth, axis=1)))
            for s in range(4)
        )
        / diag
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-cell", type=int, default=24, help="frames per (kind, defect)")
    ap.add_argument("--extra-cards", type=int, default=80, help="more good card frames for OCR")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    if not FACES.is_dir():
        print(f"faces not found at {FACES}", file=sys.stderr)
        return 1
    cv2.setNumThreads(1)  # the figure is per core
    th = Settings.from_env({}).document
    rng = np.random.default_rng(args.seed)
    pool = {k: [render_document(rng, k, FACES) for _ in range(6)] for k in KINDS}

    confusion: Counter[tuple[str, str]] = Counter()
    errors: dict[str, list[float]] = {d: [] for d in DEFECTS}
    kind_right = kind_total = 0
    times: list[float] = []
    cards: list[tuple[SyntheticFrame, str, np.ndarray]] = []  # frame, verdict, scan
    jobs = [(k, d) for d in DEFECTS for k in KINDS for _ in range(args.per_cell)]
    for i, (kind, defect) in enumerate(jobs):
        doc_img = pool[kind][i % len(pool[kind])]
        f = make_frame(rng, kind, defect, FACES, doc=doc_img)
        t0 = time.perf_counter()
        doc = detect_document(f.image)
        q = assess(f.image, doc, th)
        times.append(time.perf_counter() - t0)
        confusion[(defect, q.verdict)] += 1
        if doc is not None and defect not in ("cut_off", "too_bright"):
            errors[defect].append(corner_error(doc.corners, f.corners))
            if defect in ("good", "blur", "glare", "too_dark"):
                kind_total += 1
                kind_right += doc.kind == kind
        if kind == "id_card" and doc is not None:
            cards.append((f, q.verdict, scan(f.image, doc)))
    # OCR: every card frame above, plus good frames of fresh cards with their own numbers
    ocr_frames: list[tuple[str | None, str, np.ndarray]] = [
        (f.id_number, v, s) for f, v, s in cards
    ]
    for _ in range(args.extra_cards):
        doc_img = render_document(rng, "id_card", FACES)
        f = make_frame(rng, "id_card", "good", FACES, doc=doc_img)
        doc = detect_document(f.image)
        q = assess(f.image, doc, th)
        if doc is not None:
            ocr_frames.append((f.id_number, q.verdict, scan(f.image, doc)))

    readable = exact = wrong_valid = valid_total = 0
    statuses: Counter[str] = Counter()
    ocr_times: list[float] = []
    for truth, verdict, flat in ocr_frames:
        t0 = time.perf_counter()
        r = read_id_number(flat, today())
        ocr_times.append(time.perf_counter() - t0)
        statuses[r.status] += 1
        if r.status == "valid":
            valid_total += 1
            wrong_valid += r.number != truth
        if verdict == "ok":
            readable += 1
            exact += r.number == truth

    # --- report ----------------------------------------------------------------------
    frames = sum(confusion.values())
    print(f"frames: {frames} confusion + {args.extra_cards} extra card frames, 1280x720")
    head = "true \\ verdict".ljust(14) + "".join(v[:10].rjust(11) for v in VERDICTS)
    print(head)
    for d in DEFECTS:
        row = d.ljust(14) + "".join(str(confusion[(d, v)]).rjust(11) for v in VERDICTS)
        print(row)
    expected = {d: ("ok" if d == "good" else d) for d in DEFECTS}
    right = sum(confusion[(d, expected[d])] for d in DEFECTS)
    verdict_acc = right / frames
    good_total = sum(confusion[("good", v)] for v in VERDICTS)
    good_accepted = confusion[("good", "ok")] / good_total
    defect_total = frames - good_total
    defect_accepted = sum(confusion[(d, "ok")] for d in DEFECTS if d != "good") / defect_total
    good_err = np.array(errors["good"])
    within = float(np.mean(good_err < 0.02)) if len(good_err) else 0.0
    visible = np.concatenate([np.array(v) for d, v in errors.items() if v and d != "too_skewed"])
    t_ms = np.array(times) * 1000
    print(f"verdict right: {right}/{frames} = {verdict_acc:.3f}")
    print(
        f"good frames accepted: {good_accepted:.3f}; "
        f"defective frames accepted: {defect_accepted:.3f}"
    )
    print(
        f"corners within 2% of the document diagonal, good frames: {within:.3f} "
        f"(n={len(good_err)}, median {np.median(good_err) * 100:.2f}%, "
        f"max {np.max(good_err) * 100:.2f}%)"
    )
    print(
        "corners within 2%, frames with the whole document visible and flat: "
        f"{np.mean(visible < 0.02):.3f} (n={len(visible)})"
    )
    print(f"kind right (good/blur/glare/dark frames): {kind_right}/{kind_total}")
    print(
        f"detection+quality ms/frame (1 core): mean {t_ms.mean():.1f}, "
        f"p50 {np.percentile(t_ms, 50):.1f}, p95 {np.percentile(t_ms, 95):.1f}, "
        f"max {t_ms.max():.1f}"
    )
    id_exact = exact / readable if readable else 0.0
    print(
        f"ID number exact on readable cards (verdict ok): {exact}/{readable} = {id_exact:.3f}; "
        f"all card frames read: {dict(statuses)}; wrong numbers reported valid: {wrong_valid}"
    )
    print(
        f"OCR ms/card: mean {np.mean(ocr_times) * 1000:.0f}, "
        f"p95 {np.percentile(ocr_times, 95) * 1000:.0f}"
    )
    result = {
        "bench": "documents",
        "frames": frames + args.extra_cards,
        "verdict_accuracy": round(verdict_acc, 4),
        "good_accepted": round(good_accepted, 4),
        "defective_accepted": round(defect_accepted, 4),
        "corners_within_2pct_good": round(within, 4),
        "corners_within_2pct_visible": round(float(np.mean(visible < 0.02)), 4),
        "ms_per_frame_mean": round(float(t_ms.mean()), 2),
        "ms_per_frame_p95": round(float(np.percentile(t_ms, 95)), 2),
        "id_readable": readable,
        "id_exact": round(id_exact, 4),
        "id_cards_read": len(ocr_frames),
        "id_valid_reported": valid_total,
        "id_wrong_valid": wrong_valid,
        "ocr_ms_mean": round(float(np.mean(ocr_times) * 1000), 1),
        "goals_met": bool(
            within >= 0.95 and id_exact >= 0.95 and wrong_valid == 0 and t_ms.mean() <= 30
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
