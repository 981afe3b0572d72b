"""What the capture panel tells the applicant and clerk, and when it takes the page itself.

Pure: the verdicts of the last sampled document frames (each with its time and outline)
and `now` in, the words to show and whether to auto-take out. Words do not flicker: the
shown verdict is the one most of the last `hold_s` agreed on. Auto-take needs every sample
of the last `steady_s` good and the outline still, a fresh latest sample, and a pause after
the previous take.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

Outline = tuple[float, ...]  # 8 numbers: x, y of the four corners, as shares of the frame


class GuidanceVerdict(Enum):
    """The quality verdict of one sampled frame (verify.document_quality's defects, + ok)."""

    OK = "ok"
    NOT_FOUND = "not_found"
    CUT_OFF = "cut_off"
    TOO_SMALL = "too_small"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    TOO_SKEWED = "too_skewed"
    BLUR = "blur"
    GLARE = "glare"
    NO_PICTURE = "no_picture"  # no fresh frame from the document camera


WORDS: dict[GuidanceVerdict, str] = {
    GuidanceVerdict.OK: "可以拍了",
    GuidanceVerdict.NOT_FOUND: "没有找到材料",
    GuidanceVerdict.CUT_OFF: "材料没有拍全",
    GuidanceVerdict.TOO_SMALL: "材料太小",
    GuidanceVerdict.TOO_DARK: "太暗",
    GuidanceVerdict.TOO_BRIGHT: "太亮",
    GuidanceVerdict.TOO_SKEWED: "请把材料放平",
    GuidanceVerdict.BLUR: "拍糊了",
    GuidanceVerdict.GLARE: "反光太强",
    GuidanceVerdict.NO_PICTURE: "没有收到材料摄像头的画面",
}

# the applicant's side: what to do, in plain words
KIOSK_WORDS: dict[GuidanceVerdict, str] = {
    **WORDS,
    GuidanceVerdict.OK: "请保持不动",
    GuidanceVerdict.NOT_FOUND: "请把材料放在镜头下",
    GuidanceVerdict.TOO_SMALL: "请把材料拿近一些",
    GuidanceVerdict.TOO_DARK: "太暗了，请开灯或换个亮一点的地方",
    GuidanceVerdict.TOO_BRIGHT: "太亮了，请避开强光",
    GuidanceVerdict.BLUR: "拍糊了，请保持不动",
    GuidanceVerdict.GLARE: "反光太强，请换个角度",
}

SHIFT_WORDS = {"left": "往左边挪一点", "right": "往右边挪一点", "up": "往上挪一点",
               "down": "往下挪一点"}


@dataclass(frozen=True)
class GuidanceRules:
    hold_s: float = 0.4  # words show the verdict most of this window agreed on
    steady_s: float = 1.0  # good and still this long before an auto-take
    stale_s: float = 1.5  # a latest sample older than this means no picture
    cooldown_s: float = 2.5  # no second auto-take sooner than this
    max_motion: float = 0.015  # corner movement between samples, share of the frame
    moving_gap_s: float = 0.5  # a picture that keeps moving is judged at most this often
    confirm_s: float = 0.07  # words about to change: the next sample this soon (~2 frames)


@dataclass(frozen=True)
class Sample:
    at: float
    verdict: GuidanceVerdict
    outline: Outline | None = None
    shift: str | None = None  # for a cut-off page: "left" | "right" | "up" | "down"


@dataclass(frozen=True)
class Guidance:
    verdict: GuidanceVerdict
    words: str  # for the clerk
    kiosk_words: str  # for the applicant
    outline: Outline | None
    ready: bool  # good now (the clerk's 拍照 will most likely be accepted)
    take: bool  # auto-take now
    settling: bool = False  # the latest sample disagrees with the words: sample again soon


def shift_hint(outline: Outline) -> str | None:
    """Where to move a page that leaves the frame: away from the edge it crosses most.
    (The camera looks down; the page moves the way the preview shows.)"""
    xs, ys = outline[0::2], outline[1::2]
    over = {"right": -min(xs), "left": max(xs) - 1.0, "down": -min(ys), "up": max(ys) - 1.0}
    side, amount = max(over.items(), key=lambda kv: kv[1])
    return side if amount > 0 else None


def motion(a: Outline | None, b: Outline | None) -> float:
    if a is None or b is None:
        return 1.0
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


def _shown(window: Sequence[Sample]) -> Sample:
    """The latest sample of the verdict most of the window had (ties: the latest)."""
    counts: dict[GuidanceVerdict, int] = {}
    for s in window:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    top = max(counts.values())
    for s in reversed(window):
        if counts[s.verdict] == top:
            return s
    return window[-1]


def _steady(history: Sequence[Sample], now: float, rules: GuidanceRules) -> bool:
    """Good and still for `steady_s`: a sample at or before the window's start, all good."""
    start = now - rules.steady_s
    window = [s for s in history if s.at >= start]
    before = [s for s in history if s.at < start]
    if not window or not before:
        return False
    span = [before[-1], *window]
    if any(s.verdict is not GuidanceVerdict.OK for s in span):
        return False
    return all(motion(a.outline, b.outline) <= rules.max_motion
               for a, b in itertools.pairwise(span))


def decide(history: Sequence[Sample], now: float, *, auto: bool,
           last_taken_at: float | None, rules: GuidanceRules | None = None) -> Guidance:
    """The words to show now and whether to take the page (history oldest first)."""
    rules = rules or GuidanceRules()
    if not history or now - history[-1].at > rules.stale_s:
        v = GuidanceVerdict.NO_PICTURE
        return Guidance(v, WORDS[v], KIOSK_WORDS[v], None, False, False)
    window = [s for s in history if s.at >= now - rules.hold_s] or [history[-1]]
    shown = _shown(window)
    latest = history[-1]
    words, kiosk = WORDS[shown.verdict], KIOSK_WORDS[shown.verdict]
    if shown.verdict is GuidanceVerdict.CUT_OFF and shown.shift in SHIFT_WORDS:
        kiosk = SHIFT_WORDS[shown.shift]
    ready = latest.verdict is GuidanceVerdict.OK and shown.verdict is GuidanceVerdict.OK
    cooled = last_taken_at is None or now - last_taken_at >= rules.cooldown_s
    take = auto and ready and cooled and _steady(history, now, rules)
    return Guidance(shown.verdict, words, kiosk, latest.outline, ready, take,
                    settling=latest.verdict is not shown.verdict)


def next_sample_in(g: Guidance, every_s: float, rules: GuidanceRules | None = None) -> float:
    """When to sample next: soon when the words are about to change (one more agreeing
    sample settles them; an unchanged picture costs no judging), else every `every_s`."""
    rules = rules or GuidanceRules()
    return min(rules.confirm_s, every_s) if g.settling else every_s


def trim(history: list[Sample], now: float, keep_s: float = 3.0) -> list[Sample]:
    """The samples still needed (bounded memory): the last `keep_s` plus one before."""
    recent = [s for s in history if s.at >= now - keep_s]
    older = [s for s in history if s.at < now - keep_s]
    return ([older[-1]] if older else []) + recent


def judge_now(moved: bool, was_moving: bool, last_judged_at: float | None, now: float,
              rules: GuidanceRules | None = None) -> bool:
    """Whether to judge this sampled frame in the pool. An unchanged picture keeps its
    verdict; the first change after a still picture is judged at once (the words follow a
    page put down within one sample); a picture that keeps moving only every
    `moving_gap_s`, since its words could not settle anyway and judging costs ~30 ms."""
    rules = rules or GuidanceRules()
    if not moved:
        return False
    if not was_moving or last_judged_at is None:
        return True
    return now - last_judged_at >= rules.moving_gap_s
