"""ID portrait: found on a card as the document camera sees it, or on a cropped portrait."""

from __future__ import annotations

import pytest

from testkit.synth_id import EFFECTS, RGB, photograph_card, render_card
from verify.portrait import extract_portrait, find_card


@pytest.mark.parametrize("level", ["mild", "medium", "strong"])
def test_card_is_traced_and_portrait_encoded_at_every_effect_level(
    face_heads: dict[str, RGB], level: str
) -> None:
    photo = photograph_card(render_card(face_heads["obama2.jpg"]), EFFECTS[level], seed=2)
    assert find_card(photo) is not None
    portrait = extract_portrait(photo)
    assert portrait.ok, portrait.reason
    assert portrait.card_found
    assert portrait.crop is not None and portrait.crop.shape[1] >= 160  # upsampled
    assert 35 < portrait.face_px < 130  # as small as the document camera saw it


def test_effect_levels_shrink_the_portrait(face_heads: dict[str, RGB]) -> None:
    card = render_card(face_heads["biden.jpg"])
    sizes = [
        extract_portrait(photograph_card(card, EFFECTS[level], seed=3)).face_px
        for level in ("mild", "strong")
    ]
    assert sizes[0] > sizes[1]


def test_already_cropped_card_is_accepted(face_heads: dict[str, RGB]) -> None:
    portrait = extract_portrait(render_card(face_heads["obama3.jpg"]))
    assert portrait.ok, portrait.reason
    assert portrait.face_px > 100
