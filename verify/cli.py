"""The QA and operator command line: `python -m verify face-match ...`, `... liveness ...`.

Each command prints one JSON object on stdout. Exit status 0 when a verdict was printed,
2 for a usage error, 1 when an input file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from verify.image_files import InputError, read_image, read_text, video_frames
from verify.thresholds import Thresholds


def cmd_face_match(args: argparse.Namespace, th: Thresholds) -> dict[str, object]:
    from verify.face_match import match

    card = read_image(args.id)
    live = [read_image(p) for p in args.live]
    verdict = match(card, live, th.face_match)
    result = verdict.to_dict()
    result["live_files"] = [str(p) for p in args.live]
    return result


def cmd_liveness(args: argparse.Namespace, th: Thresholds) -> dict[str, object]:
    from verify.liveness import LivenessSession, observe, parse_challenge

    session = LivenessSession(parse_challenge(args.challenge), th.liveness)
    verdict = None
    for t, frame in video_frames(args.video, args.max_fps):
        verdict = session.feed(observe(frame, t, th.face_match.detect_width))
        if verdict.status != "pending":
            break
    if verdict is None or verdict.status == "pending":
        verdict = session.finish()
    return {"challenge": args.challenge, **verdict.to_dict()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__)
    parser.add_argument("--thresholds", type=Path, default=None,
                        help="JSON file of thresholds over the defaults, e.g. "
                             '{"face_match": {"pass_below": 0.5}}')
    subparsers = parser.add_subparsers(dest="command", required=True)

    face = subparsers.add_parser("face-match", help="match an ID card portrait to live frames")
    face.add_argument("--id", type=Path, required=True, help="image of the ID card (or portrait)")
    face.add_argument("--live", type=Path, nargs="+", required=True, help="face-camera images")
    face.set_defaults(handler=cmd_face_match)

    live = subparsers.add_parser("liveness", help="judge a head-movement challenge on a video")
    live.add_argument("--video", type=Path, required=True)
    live.add_argument("--challenge", required=True, help="moves in order: left,right,nod")
    live.add_argument("--max-fps", type=float, default=10.0, help="frames judged per second")
    live.set_defaults(handler=cmd_liveness)

    from verify.document_cli import register as register_document

    register_document(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        th = Thresholds() if args.thresholds is None else Thresholds.from_json(
            read_text(args.thresholds))
        result = args.handler(args, th)
    except InputError as exc:
        print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        return 1
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
