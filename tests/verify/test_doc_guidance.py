"""The capture panel's words and auto-take as a function of verdict history and `now`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from verify.doc_guidance import (
    KIOSK_WORDS,
    WORDS,
    GuidanceRules,
    GuidanceVerdict,
    Sample,
    decide,
    shift_hint,
    trim,
)

V = GuidanceVerdict
PAGE = (0.3, 0.2, 0.7, 0.2, 0.7, 0.8, 0.3, 0.8)
RULES = GuidanceRules()


def _run(verdicts: list[V], every: float = 0.33, outline: tuple[float, ...] = PAGE,
         start: float = 100.0) -> list[Sample]:
    return [Sample(start + i * every, v, outline if v is not V.NOT_FOUND else None)
            for i, v in enumerate(verdicts)]


def test_a_good_still_page_is_taken_after_about_a_second_when_auto_is_on() -> None:
    history = _run([V.OK] * 5)  # 1.32 s of good, still frames
    now = history[-1].at
    g = decide(history, now, auto=True, last_taken_at=None)
    assert (g.words, g.kiosk_words, g.ready, g.take) == ("可以拍了", "请保持不动", True, True)
    assert not decide(history, now, auto=False, last_taken_at=None).take
    assert not decide(history[:2], history[1].at, auto=True, last_taken_at=None).take


def test_no_take_while_the_page_moves_or_right_after_a_take() -> None:
    moving = [Sample(100 + i * 0.33, V.OK, tuple(v + 0.03 * i for v in PAGE))
              for i in range(6)]
    g = decide(moving, moving[-1].at, auto=True, last_taken_at=None)
    assert g.ready and not g.take
    still = _run([V.OK] * 6)
    now = still[-1].at
    assert not decide(still, now, auto=True, last_taken_at=now - 1.0).take
    assert decide(still, now, auto=True, last_taken_at=now - RULES.cooldown_s).take


def test_one_odd_frame_does_not_change_the_words() -> None:
    history = _run([V.BLUR, V.BLUR, V.BLUR, V.OK], every=0.2)
    g = decide(history, history[-1].at, auto=True, last_taken_at=None)
    assert g.words == "拍糊了" and not g.ready and not g.take


def test_no_document_is_said_as_such_and_a_cut_off_page_says_where_to_move() -> None:
    history = _run([V.NOT_FOUND] * 3)
    g = decide(history, history[-1].at, auto=True, last_taken_at=None)
    assert (g.words, g.outline) == ("没有找到材料", None)
    over_right = (0.5, 0.2, 1.1, 0.2, 1.1, 0.8, 0.5, 0.8)
    cut = [Sample(100 + i * 0.33, V.CUT_OFF, over_right, shift_hint(over_right))
           for i in range(3)]
    g = decide(cut, cut[-1].at, auto=True, last_taken_at=None)
    assert (g.words, g.kiosk_words) == ("材料没有拍全", "往左边挪一点")
    assert shift_hint((0.1, -0.2, 0.9, -0.2, 0.9, 0.5, 0.1, 0.5)) == "down"
    assert shift_hint(PAGE) is None


def test_an_old_last_frame_means_no_picture() -> None:
    history = _run([V.OK] * 5)
    g = decide(history, history[-1].at + 2.0, auto=True, last_taken_at=None)
    assert g.verdict is V.NO_PICTURE and not g.ready and not g.take
    assert decide([], 0.0, auto=True, last_taken_at=None).verdict is V.NO_PICTURE


verdicts = st.lists(st.sampled_from(list(V)), min_size=1, max_size=20)


@given(verdicts, st.floats(0.05, 1.0), st.booleans())
def test_a_take_only_ever_follows_a_good_steady_second(seq: list[V], every: float,
                                                      auto: bool) -> None:
    history = _run(seq, every)
    now = history[-1].at
    g = decide(history, now, auto=auto, last_taken_at=None)
    assert g.words == WORDS[g.verdict] and g.kiosk_words in set(KIOSK_WORDS.values()) | {
        "往左边挪一点", "往右边挪一点", "往上挪一点", "往下挪一点"}
    if g.take:
        assert auto and g.ready
        since = [s for s in history if s.at >= now - RULES.steady_s - every]
        assert all(s.verdict is V.OK for s in since)
        assert history[0].at <= now - RULES.steady_s
    if seq[-1] is not V.OK:
        assert not g.ready and not g.take


@given(st.lists(st.floats(0, 100), min_size=0, max_size=40), st.floats(0, 200))
def test_trim_keeps_what_a_decision_needs(times: list[float], now: float) -> None:
    history = [Sample(t, V.OK, PAGE) for t in sorted(times)]
    kept = trim(history, now)
    assert kept == history[len(history) - len(kept):]
    assert all(s.at >= now - 3.0 for s in kept[1:])
    assert decide(kept, now, auto=True, last_taken_at=None) == decide(
        history, now, auto=True, last_taken_at=None)


def test_a_moving_picture_is_judged_at_most_twice_a_second_but_a_change_at_once() -> None:
    from verify.doc_guidance import judge_now

    rules = GuidanceRules()
    assert not judge_now(False, False, 10.0, 10.2, rules)  # unchanged: the old verdict holds
    assert judge_now(True, False, 10.0, 10.2, rules)  # put down after a still picture: now
    assert judge_now(True, True, None, 10.2, rules)
    judged, t, last = 0, 0.0, 0.0
    for step in range(50):  # 10 s of a page sliding, sampled 5 times a second
        t = step * 0.2
        if judge_now(True, step > 0, last if step else None, t, rules):
            judged, last = judged + 1, t
    assert judged <= 2 * 10 + 1


def test_words_about_to_change_are_confirmed_by_a_sample_soon_after() -> None:
    from verify.doc_guidance import next_sample_in

    # The page was put down: the first good sample is outvoted by the empty desk before it,
    # so the next sample comes within a couple of frames, not a whole interval later.
    history = _run([V.NOT_FOUND, V.NOT_FOUND, V.OK], every=0.2)
    first = decide(history, history[-1].at, auto=False, last_taken_at=None)
    assert first.words == WORDS[V.NOT_FOUND] and first.settling
    soon = next_sample_in(first, 0.2, RULES)
    assert soon == RULES.confirm_s < 0.2
    confirmed = [*history, Sample(history[-1].at + soon, V.OK, PAGE)]
    second = decide(confirmed, confirmed[-1].at, auto=False, last_taken_at=None)
    assert second.words == WORDS[V.OK] and not second.settling
    assert next_sample_in(second, 0.2, RULES) == 0.2
