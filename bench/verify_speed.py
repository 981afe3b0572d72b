"""Speed of face-to-ID verification on this machine.

- ms per live frame (detect + gates + encode) at 640x480 and 1280x720, one process;
- ms per card portrait (find card, rectify, locate, crop, upsample, encode) per effect level;
- time to decision with 2 processes: the card image and 3 live frames handed to a warm
  2-process pool at once, until the verdict (what a media worker does when the card shows).

    .venv/bin/python bench/verify_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.synth_id import (
    EFFECTS,
    RGB,
    live_frame,
    load_head,
    photograph_card,
    render_card,
)
from verify.face_match import assess_live_frame, decide_encoded
from verify.portrait import extract_portrait

FACES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces"


def timed_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, p90) in ms after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.9 * len(samples)))]


def _warm(_: int) -> bool:
    from verify import face_model

    face_model._models()
    return True


def decision_ms(pool: ProcessPoolExecutor, card: RGB, live: list[RGB]) -> tuple[float, str]:
    start = time.perf_counter()
    portrait_job = pool.submit(extract_portrait, card)
    live_jobs = [pool.submit(assess_live_frame, frame) for frame in live]
    verdict = decide_encoded(portrait_job.result(), [job.result() for job in live_jobs])
    return (time.perf_counter() - start) * 1000, verdict.decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(json.dumps({"skipped": f"no test faces at {FACES}"}))
        return
    card_head = load_head(FACES / "obama.jpg")
    live_head = load_head(FACES / "obama2.jpg")
    result: dict[str, object] = {}

    for w, h in ((640, 480), (1280, 720)):
        frame = live_frame(live_head, size=(w, h), face_width_frac=0.4)
        med, p90 = timed_ms(partial(assess_live_frame, frame), args.repeat)
        print(
            f"live frame {w}x{h}: median {med:.0f} ms, p90 {p90:.0f} ms (detect + gates + encode)"
        )
        result[f"live_frame_{w}x{h}_ms"] = round(med, 1)
        result[f"live_frame_{w}x{h}_p90_ms"] = round(p90, 1)

    card = render_card(card_head)
    cards = {level: photograph_card(card, effect, seed=1) for level, effect in EFFECTS.items()}
    for level, image in cards.items():
        med, p90 = timed_ms(partial(extract_portrait, image), max(5, args.repeat // 3))
        print(f"card portrait ({level}, 1280x720): median {med:.0f} ms, p90 {p90:.0f} ms")
        result[f"portrait_{level}_ms"] = round(med, 1)

    live = [live_frame(live_head, yaw=y, seed=i) for i, y in enumerate((0.0, 0.1, -0.1))]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_warm, range(4)))
        runs = [decision_ms(pool, cards["medium"], live) for _ in range(max(5, args.repeat // 3))]
    times = sorted(t for t, _ in runs)
    decisions = sorted({d for _, d in runs})
    med = statistics.median(times)
    print(
        f"time to decision, 2 processes (card + 3 live frames): median {med:.0f} ms, "
        f"max {times[-1]:.0f} ms, decisions {decisions}"
    )
    result["decision_2proc_ms"] = round(med, 1)
    result["decision_2proc_max_ms"] = round(times[-1], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
