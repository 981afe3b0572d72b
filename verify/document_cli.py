"""`python -m verify document IMAGE [--out FILE]`: find, judge and flatten one document.

Prints one JSON object: found, corners, kind, quality measures, verdict, reasons, and for
an ID card the number read from it. With --out, writes the flat scan there.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from verify.image_files import InputError, read_bgr
from verify.thresholds import Thresholds


def describe(
    frame: NDArray[np.uint8], th: Thresholds, today: date | None = None
) -> tuple[dict[str, object], NDArray[np.uint8] | None]:
    """The JSON-ready description of one frame, and its flat scan when a document was found."""
    from verify.document_detect import detect_document, scan, source_dpi
    from verify.document_quality import assess
    from verify.id_ocr import read_id_number

    doc = detect_document(frame)
    quality = assess(frame, doc, th.document)
    result: dict[str, object] = {"found": doc is not None, **quality.as_dict()}
    if doc is None:
        return result, None
    flat = scan(frame, doc)
    result["kind"] = doc.kind
    result["corners"] = [[round(float(x), 1), round(float(y), 1)] for x, y in doc.corners]
    result["scan_size"] = [int(flat.shape[1]), int(flat.shape[0])]
    result["source_dpi"] = round(source_dpi(doc), 1)
    if doc.kind == "id_card":
        day = today if today is not None else datetime.now(UTC).date()
        result["id_number"] = read_id_number(flat, day).as_dict()
    return result, flat


def cmd_document(args: argparse.Namespace, th: Thresholds) -> dict[str, object]:
    frame = read_bgr(args.image)
    result, flat = describe(frame, th)
    result["image"] = str(args.image)
    if args.out is not None:
        if flat is None:
            result["out"] = None
        else:
            ok, data = cv2.imencode(args.out.suffix or ".png", flat)
            if not ok:
                raise InputError(f"cannot encode the scan as {args.out.suffix}")
            args.out.write_bytes(data.tobytes())
            result["out"] = str(args.out)
    return result


def register(subparsers: Any) -> None:
    """Add the `document` subcommand to the verify CLI."""
    doc = subparsers.add_parser("document", help="find, judge and flatten a document image")
    doc.add_argument("image", type=Path, help="a document-camera frame")
    doc.add_argument("--out", type=Path, default=None, help="write the flat scan here")
    doc.set_defaults(handler=cmd_document)
