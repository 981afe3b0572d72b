"""Calibrate the two face thresholds on a labelled set and print the error rates they give.

The labelled set is built from ../shared/testdata/faces: every distinct photo becomes an ID
card photographed by a document camera at three effect levels (several seeds), every other
photo becomes a set of live frames (pose and light changes). Pairs of the same person are
genuine, the others impostors. The distance of a pair is the median over the best live
frames, exactly as the service decides.

Rule: pass_below sits a margin below the closest impostor (no false accept), fail_above a
margin above the farthest genuine pair with a normal-size portrait; tiny portraits get their
own fail threshold above their farthest genuine pair.

    .venv/bin/python bench/calibrate_face.py [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testkit.synth_id import (  # noqa: E402
    EFFECTS,
    RGB,
    live_frame,
    load_head,
    photograph_card,
    render_card,
)
from verify.face_config import FaceMatchConfig  # noqa: E402
from verify.face_match import LiveFace, assess_live_frame, decide_encoded  # noqa: E402
from verify.portrait import IdPortrait, extract_portrait  # noqa: E402

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"
PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg")
LEVELS = ("mild", "medium", "strong")
PASS_MARGIN = 0.08
FAIL_MARGIN = 0.05


def person(name: str) -> str:
    return name.removesuffix(".jpg").rstrip("0123456789")


@dataclass(frozen=True)
class Pair:
    level: str
    card: str
    live: str
    seed: int
    genuine: bool
    portrait: IdPortrait
    faces: list[LiveFace]


def live_set(head: RGB) -> list[RGB]:
    poses = [(0.0, 0.0, 1.0), (0.15, 0.0, 0.85), (-0.15, 0.1, 1.15), (0.0, -0.1, 0.95)]
    return [
        live_frame(head, yaw=y, pitch=p, light=light, seed=i)
        for i, (y, p, light) in enumerate(poses)
    ]


def collect(seeds: int, config: FaceMatchConfig) -> list[Pair]:
    heads = {name: load_head(FACES / name) for name in PHOTOS}
    lives = {name: [assess_live_frame(f, config) for f in live_set(h)] for name, h in heads.items()}
    pairs: list[Pair] = []
    for level in LEVELS:
        for card_name, head in heads.items():
            card = render_card(head)
            for seed in range(seeds):
                portrait = extract_portrait(photograph_card(card, EFFECTS[level], seed), config)
                for live_name, faces in lives.items():
                    if live_name == card_name:
                        continue  # same photograph: not a fair genuine pair
                    genuine = person(live_name) == person(card_name)
                    pairs.append(Pair(level, card_name, live_name, seed, genuine, portrait, faces))
    return pairs


def distance(pair: Pair, config: FaceMatchConfig) -> float:
    verdict = decide_encoded(pair.portrait, pair.faces, config)
    return math.inf if verdict.distance is None else verdict.distance


def pick(pairs: list[Pair], config: FaceMatchConfig) -> FaceMatchConfig:
    impostor = min(distance(p, config) for p in pairs if not p.genuine)
    small = config.small_portrait_px
    normal = [distance(p, config) for p in pairs if p.genuine and p.portrait.face_px >= small]
    tiny = [distance(p, config) for p in pairs if p.genuine and p.portrait.face_px < small]
    pass_below = math.floor((impostor - PASS_MARGIN) * 100) / 100
    fail_above = max(pass_below, math.ceil((max(normal, default=0) + FAIL_MARGIN) * 100) / 100)
    small_fail = max(fail_above, math.ceil((max(tiny, default=0) + FAIL_MARGIN) * 100) / 100)
    return replace(
        config, pass_below=pass_below, fail_above=fail_above, small_portrait_fail_above=small_fail
    )


def rates(pairs: list[Pair], config: FaceMatchConfig) -> dict[str, dict[str, float | int]]:
    """Per effect level: false accept, false reject, review rates (and counts)."""
    table: dict[str, dict[str, float | int]] = {}
    for level in LEVELS:
        chosen = [p for p in pairs if p.level == level]
        gen = [decide_encoded(p.portrait, p.faces, config).decision for p in chosen if p.genuine]
        imp = [
            decide_encoded(p.portrait, p.faces, config).decision for p in chosen if not p.genuine
        ]
        table[level] = {
            "genuine": len(gen),
            "impostor": len(imp),
            "far": imp.count("pass") / max(len(imp), 1),
            "frr": gen.count("fail") / max(len(gen), 1),
            "genuine_pass": gen.count("pass") / max(len(gen), 1),
            "genuine_review": gen.count("review") / max(len(gen), 1),
            "impostor_review": imp.count("review") / max(len(imp), 1),
            "review": (gen.count("review") + imp.count("review")) / max(len(chosen), 1),
            "portrait_px_min": min(p.portrait.face_px for p in chosen),
            "portrait_px_max": max(p.portrait.face_px for p in chosen),
        }
    return table


def print_table(table: dict[str, dict[str, float | int]]) -> None:
    print(f"{'level':8} {'gen':>4} {'imp':>4} {'FAR':>6} {'FRR':>6} {'pass':>6} "
          f"{'g.rev':>6} {'i.rev':>6} {'review':>7} {'px':>7}")  # fmt: skip
    for level, r in table.items():
        print(
            f"{level:8} {r['genuine']:>4} {r['impostor']:>4} {r['far']:>6.1%} {r['frr']:>6.1%} "
            f"{r['genuine_pass']:>6.1%} {r['genuine_review']:>6.1%} {r['impostor_review']:>6.1%} "
            f"{r['review']:>7.1%} {r['portrait_px_min']:>3}-{r['portrait_px_max']:<3}"
        )


def distance_summary(pairs: list[Pair], config: FaceMatchConfig) -> None:
    for level in LEVELS:
        for genuine in (True, False):
            d = sorted(
                distance(p, config) for p in pairs if p.level == level and p.genuine == genuine
            )
            label = "genuine " if genuine else "impostor"
            print(f"  {level:7} {label} n={len(d):3} min={d[0]:.3f} median={d[len(d) // 2]:.3f} "
                  f"max={d[-1]:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="card photographs per photo and level")
    args = parser.parse_args()
    if not FACES.is_dir():
        print(json.dumps({"skipped": f"no test faces at {FACES}"}))
        return
    config = FaceMatchConfig()
    pairs = collect(args.seeds, config)
    print("distances (median over the best live frames):")
    distance_summary(pairs, config)
    chosen = pick(pairs, config)
    print(
        f"chosen: pass_below={chosen.pass_below} fail_above={chosen.fail_above} "
        f"small_portrait_fail_above={chosen.small_portrait_fail_above} "
        f"(portraits < {chosen.small_portrait_px} px)"
    )
    table = rates(pairs, chosen)
    print_table(table)
    print(
        json.dumps(
            {
                "pass_below": chosen.pass_below,
                "fail_above": chosen.fail_above,
                "small_portrait_fail_above": chosen.small_portrait_fail_above,
                "current_defaults": {
                    "pass_below": config.pass_below,
                    "fail_above": config.fail_above,
                    "small_portrait_fail_above": config.small_portrait_fail_above,
                },
                "levels": table,
            }
        )
    )


if __name__ == "__main__":
    main()
