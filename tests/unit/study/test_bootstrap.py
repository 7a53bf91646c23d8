"""study.stats: the documents x seeds bootstrap, Holm's adjustment and TOST, on hand-made data.

bpb of a set of (seed, document) cells is sum(nats) / (ln 2 sum(bytes)), so a document
whose nats are c ln 2 times its bytes has bpb c exactly: every case below is built that way
and its answer is known without the bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from embinit.study.stats import (
    BOOTSTRAP_B,
    BOOTSTRAP_SEED,
    TOST_CONFIDENCE,
    bootstrap_bpb,
    bootstrap_p,
    equivalent,
    holm,
    paired_bootstrap,
)

LN2 = math.log(2)


def nats_for(bpb: np.ndarray, doc_bytes: np.ndarray) -> np.ndarray:
    """Cells (seeds x documents) whose bpb is ``bpb`` given each document's bytes."""
    return np.asarray(bpb, dtype=float) * LN2 * np.asarray(doc_bytes, dtype=float)


# ------------------------------------------------------------------------------ known answers


def test_constant_shift_per_document_collapses_the_interval() -> None:
    rng = np.random.default_rng(0)
    doc_bytes = rng.integers(200, 5000, size=9)
    ref = nats_for(rng.uniform(1.0, 5.0, size=(3, 9)), doc_bytes)  # documents of any difficulty
    arm = ref + nats_for(np.full((3, 9), -0.03), doc_bytes)  # 0.03 bpb better on every document
    r = paired_bootstrap(arm, ref, doc_bytes)
    assert r.estimate == pytest.approx(-0.03, abs=1e-12)
    assert (r.lo, r.hi) == pytest.approx((-0.03, -0.03), abs=1e-12)
    assert (r.tost_lo, r.tost_hi) == pytest.approx((-0.03, -0.03), abs=1e-12)
    assert r.p_value == 1 / BOOTSTRAP_B  # every replicate is below zero: floored at 1/B
    assert (r.n_seeds, r.n_docs, r.n_boot) == (3, 9, BOOTSTRAP_B)


def test_documents_with_opposite_effects_give_an_interval_around_zero() -> None:
    # One seed, two equal documents: the arm is 0.1 bpb worse on one and 0.1 better on the
    # other. Resampled documents: {1,1} (1/4) +0.1, {1,2} (1/2) 0, {2,2} (1/4) -0.1.
    doc_bytes = np.array([1000, 1000])
    ref = nats_for([[2.0, 3.0]], doc_bytes)
    arm = nats_for([[2.1, 2.9]], doc_bytes)
    r = paired_bootstrap(arm, ref, doc_bytes)
    assert r.estimate == pytest.approx(0.0, abs=1e-12)
    assert (r.lo, r.hi) == pytest.approx((-0.1, 0.1), abs=1e-12)
    assert r.p_value == 1.0
    assert np.mean(r.replicates > 1e-9) == pytest.approx(0.25, abs=0.015)
    assert np.mean(np.abs(r.replicates) < 1e-9) == pytest.approx(0.5, abs=0.015)


def test_seeds_are_resampled_too() -> None:
    # One document, two seeds: +0.2 on seed 0, -0.2 on seed 1; the same law as above.
    doc_bytes = np.array([500])
    ref = nats_for([[1.0], [1.5]], doc_bytes)
    arm = nats_for([[1.2], [1.3]], doc_bytes)
    r = paired_bootstrap(arm, ref, doc_bytes)
    assert (r.lo, r.hi) == pytest.approx((-0.2, 0.2), abs=1e-12)
    assert np.mean(r.replicates > 1e-9) == pytest.approx(0.25, abs=0.015)


def test_point_estimate_is_a_ratio_of_sums_over_every_cell() -> None:
    doc_bytes = np.array([100, 300])
    arm = np.array([[50.0, 210.0], [70.0, 190.0]])
    ref = np.array([[60.0, 200.0], [80.0, 220.0]])
    r = paired_bootstrap(arm, ref, doc_bytes, n_boot=200)
    expected = (520.0 - 560.0) / (LN2 * 800.0)  # bytes count once per seed: 2 x 400
    assert r.estimate == pytest.approx(expected, abs=1e-15)
    one = bootstrap_bpb(arm, doc_bytes, n_boot=200)
    assert one.estimate == pytest.approx(520.0 / (LN2 * 800.0), abs=1e-15)
    assert math.isnan(one.p_value) and one.lo <= one.estimate <= one.hi


def test_a_replicate_sums_the_cross_product_of_drawn_seeds_and_documents() -> None:
    arm = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    ref = np.zeros_like(arm) + 1.0
    doc_bytes = np.array([1.0, 1.0, 1.0])
    r = paired_bootstrap(arm, ref, doc_bytes, n_boot=6, seed=7)
    rng = np.random.default_rng(7)  # the draws, in the order the bootstrap makes them
    v = rng.multinomial(2, [0.5, 0.5], size=6)
    w = rng.multinomial(3, [1 / 3] * 3, size=6)
    for b in range(6):
        cells = np.outer(v[b], w[b])  # weight of (seed, document): draws of each, multiplied
        expected = (cells * arm).sum() / (LN2 * cells.sum()) - 1.0 / LN2
        assert r.replicates[b] == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------ pairing


def test_paired_resampling_is_narrow_where_unpaired_would_be_wide() -> None:
    # Documents differ hugely in difficulty (1 to 5 bpb); the arm is 0.01 bpb better on each.
    doc_bytes = np.full(12, 1000)
    difficulty = np.tile(np.linspace(1.0, 5.0, 12), (2, 1))
    ref = nats_for(difficulty, doc_bytes)
    arm = nats_for(difficulty - 0.01, doc_bytes)
    paired = paired_bootstrap(arm, ref, doc_bytes)
    assert paired.hi - paired.lo < 1e-9
    # Resampling the arms independently (different draws) mixes in the document spread.
    unpaired = (
        bootstrap_bpb(arm, doc_bytes, seed=1).replicates
        - bootstrap_bpb(ref, doc_bytes, seed=2).replicates
    )
    lo, hi = np.quantile(unpaired, [0.025, 0.975])
    assert hi - lo > 1.0 and lo < 0 < hi


def test_paired_seeds_cancel_what_the_arms_share() -> None:
    doc_bytes = np.array([800, 1200, 1000])
    seed_level = np.array([[1.0], [2.0], [3.0]]) * np.ones((3, 3))  # seed 0 easy, seed 2 hard
    ref = nats_for(seed_level, doc_bytes)
    arm = nats_for(seed_level + 0.05, doc_bytes)
    d = paired_bootstrap(arm, ref, doc_bytes)
    assert (d.lo, d.hi) == pytest.approx((0.05, 0.05), abs=1e-12)
    alone = bootstrap_bpb(arm, doc_bytes)  # the arm's own figure does vary with the seeds
    assert alone.hi - alone.lo > 1.0


def test_the_same_inputs_give_the_same_replicates() -> None:
    rng = np.random.default_rng(3)
    doc_bytes = rng.integers(100, 900, size=7)
    arm, ref = rng.uniform(100, 900, size=(2, 3, 7))
    a = paired_bootstrap(arm, ref, doc_bytes)
    b = paired_bootstrap(arm, ref, doc_bytes)
    assert np.array_equal(a.replicates, b.replicates) and a == b
    c = paired_bootstrap(arm, ref, doc_bytes, seed=BOOTSTRAP_SEED + 1)
    assert not np.array_equal(a.replicates, c.replicates)


def test_interval_levels() -> None:
    rng = np.random.default_rng(5)
    arm, ref = rng.uniform(100, 900, size=(2, 3, 20))
    r = paired_bootstrap(arm, ref, np.full(20, 300))
    assert TOST_CONFIDENCE == 0.90
    assert r.lo <= r.tost_lo <= r.tost_hi <= r.hi  # the 90% interval sits inside the 95%
    assert (r.lo, r.hi) == pytest.approx(tuple(np.quantile(r.replicates, [0.025, 0.975])))
    assert (r.tost_lo, r.tost_hi) == pytest.approx(tuple(np.quantile(r.replicates, [0.05, 0.95])))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        paired_bootstrap(np.ones((2, 3)), np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="positive byte count"):
        paired_bootstrap(np.ones((1, 2)), np.ones((1, 2)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="2-D"):
        bootstrap_bpb(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="no \\(seed, document\\) cells"):
        bootstrap_bpb(np.ones((0, 0)), np.ones(0))


# ------------------------------------------------------------------------------ p, Holm, TOST


def test_bootstrap_p() -> None:
    assert bootstrap_p(np.array([1.0, 2.0, 3.0, 4.0])) == 0.25  # none <= 0: floored at 1/B
    assert bootstrap_p(np.array([-1.0, 1.0])) == 1.0
    assert bootstrap_p(np.zeros(5)) == 1.0
    assert bootstrap_p(np.array([-2.0, -1.0] + [1.0] * 8)) == pytest.approx(0.4)
    assert math.isnan(bootstrap_p(np.array([])))


def test_holm_textbook() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # m = 4: sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, max(0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, then monotone
    assert holm([0.02]) == pytest.approx([0.02])


def test_holm_leaves_missing_p_values_out_of_the_family() -> None:
    out = holm([0.01, float("nan"), 0.04])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([]).size == 0 and np.isnan(holm([float("nan")])).all()


def test_equivalence_needs_the_whole_interval_strictly_inside_the_margin() -> None:
    assert equivalent(-0.01, 0.015, 0.02)
    assert not equivalent(-0.02, 0.01, 0.02)  # touching the margin is not inside it
    assert not equivalent(-0.01, 0.025, 0.02)
    assert not equivalent(-0.03, 0.03, 0.02)
    assert not equivalent(float("nan"), 0.0, 0.02)
    assert not equivalent(-0.001, 0.001, 0.0)
