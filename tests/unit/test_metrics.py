"""bpb and the OOV spelling charge against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embinit.metrics import (
    LayoutModel,
    SpellingModel,
    bits_per_byte,
    layout_events,
    lossless_bpb,
    oov_adjusted_bpb,
)


def test_bits_per_byte_is_nats_over_ln2_bytes() -> None:
    assert bits_per_byte(100 * math.log(2), 50) == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(ValueError):
        bits_per_byte(1.0, 0)


def test_oov_adjusted_adds_spelling_nats() -> None:
    assert oov_adjusted_bpb(10.0, 4.0, 7) == pytest.approx(14.0 / (math.log(2) * 7))


def test_spelling_model_hand_computed() -> None:
    # Training words "ab", "a": counts a=2, b=1, EOW=2; N = 5 symbols, 257 in the alphabet.
    m = SpellingModel.fit(["ab", "a"])
    denom = 5 + 257
    p_a, p_b, p_eow, p_z = 3 / denom, 2 / denom, 3 / denom, 1 / denom
    assert m.cost("ab") == pytest.approx(-(math.log(p_a) + math.log(p_b) + math.log(p_eow)))
    # An unseen character still has finite cost (add-one smoothing).
    assert m.cost("z") == pytest.approx(-(math.log(p_z) + math.log(p_eow)))
    assert np.exp(m.log_probs).sum() == pytest.approx(1.0)


def test_spelling_model_counts_utf8_bytes() -> None:
    m = SpellingModel.fit([])
    # 'é' is two UTF-8 bytes: two uniform byte costs plus end-of-word, each ln 257.
    assert m.cost("é") == pytest.approx(3 * math.log(257))


def test_layout_events_reconstruct_the_text() -> None:
    text = "Hi, you  there.\n"
    offsets = [(0, 2), (2, 3), (4, 7), (9, 14), (14, 15)]
    events = layout_events(text, offsets)
    assert events == [("^|w", ""), ("w|p", ""), ("p|w", " "), ("w|w", "  "), ("w|p", ""),
                      ("p|^", "\n")]
    rebuilt = "".join(gap + text[a:b] for (_, gap), (a, b) in zip(events, offsets, strict=False))
    assert rebuilt + events[-1][1] == text


def test_layout_model_hand_computed() -> None:
    spelling = SpellingModel.fit([])
    m = LayoutModel.fit([("w|w", " "), ("w|w", " "), ("w|w", "\n"), ("w|p", "")], spelling)
    # context w|w: N=3, K=2 -> denominator 6
    assert m.cost("w|w", " ") == pytest.approx(-math.log(3 / 6))
    assert m.cost("w|w", "\n") == pytest.approx(-math.log(2 / 6))
    # an unseen gap: escape probability 1/6, then spelled byte by byte (here 2 bytes + EOW)
    assert m.cost("w|w", "  ") == pytest.approx(math.log(6) + 3 * math.log(257))
    # an unseen context: only the escape outcome, denominator 1
    assert m.cost("p|p", "") == pytest.approx(0.0 + math.log(257))


def test_lossless_bpb_adds_both_charges() -> None:
    assert lossless_bpb(10.0, 3.0, 1.0, 7) == pytest.approx(14.0 / (math.log(2) * 7))
