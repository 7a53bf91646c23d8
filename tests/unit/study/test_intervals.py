"""study.stats: the documents x seeds variance-components interval, Holm and TOST.

bpb of a set of (seed, document) cells is sum(nats) / (ln 2 sum(bytes)), so a document
whose nats are c ln 2 times its bytes has bpb c exactly: the cases below are built that way
and their answers are known without resampling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from embinit.study.stats import (
    BOOTSTRAP_B,
    BOOTSTRAP_SEED,
    TOST_CONFIDENCE,
    bpb_interval,
    contrast_interval,
    effective_docs,
    equivalent,
    holm,
    mean_ci,
    paired_interval,
    welch_df,
)
from tests.unit.study.fabricate import T975_DF2

LN2 = math.log(2)


def nats_for(bpb: np.ndarray | list, doc_bytes: np.ndarray) -> np.ndarray:
    """Cells (seeds x documents) whose bpb is ``bpb`` given each document's bytes."""
    return np.asarray(bpb, dtype=float) * LN2 * np.asarray(doc_bytes, dtype=float)


# ------------------------------------------------------------------------------ known answers


def test_constant_shift_without_seed_variance_collapses_the_interval() -> None:
    rng = np.random.default_rng(0)
    doc_bytes = rng.integers(200, 5000, size=9)
    ref = nats_for(rng.uniform(1.0, 5.0, size=(3, 9)), doc_bytes)  # documents of any difficulty
    arm = ref + nats_for(np.full((3, 9), -0.03), doc_bytes)  # 0.03 bpb better on every document
    r = paired_interval(arm, ref, doc_bytes)
    assert r.estimate == pytest.approx(-0.03, abs=1e-12)
    assert (r.lo, r.hi) == pytest.approx((-0.03, -0.03), abs=1e-12)
    assert (r.tost_lo, r.tost_hi) == pytest.approx((-0.03, -0.03), abs=1e-12)
    assert r.se < 1e-12 and r.p_value < 1e-12
    assert (r.n_seeds, r.n_docs, r.n_boot) == (3, 9, BOOTSTRAP_B)
    # exactly no variation: the interval is the point, p is 0 (or 1 for no difference)
    same = paired_interval(ref, ref, doc_bytes, n_boot=50)
    assert (same.estimate, same.lo, same.hi, same.p_value, same.se) == (0.0, 0.0, 0.0, 1.0, 0.0)
    assert math.isnan(same.df)


def test_without_document_variation_it_is_the_student_t_interval_over_seeds() -> None:
    # The arm differs from the reference by d_s on every document of seed s: nothing varies
    # between documents, so the interval is the paired t interval over the 3 seeds.
    rng = np.random.default_rng(1)
    doc_bytes = rng.integers(200, 5000, size=12)
    d = np.array([0.010, 0.031, -0.004])
    ref = nats_for(rng.uniform(1.0, 5.0, size=(3, 12)), doc_bytes)
    arm = ref + nats_for(np.tile(d[:, None], (1, 12)), doc_bytes)
    r = paired_interval(arm, ref, doc_bytes)
    mean, lo, hi = mean_ci(d)
    assert r.v_doc < 1e-25 and r.df == pytest.approx(2.0, abs=1e-9)
    assert (r.estimate, r.lo, r.hi) == pytest.approx((mean, lo, hi), abs=1e-12)
    assert r.hi - r.estimate == pytest.approx(T975_DF2 * d.std(ddof=1) / math.sqrt(3), abs=1e-12)
    assert (r.tost_lo, r.tost_hi) == pytest.approx(mean_ci(d, TOST_CONFIDENCE)[1:], abs=1e-12)
    assert r.p_value == pytest.approx(st.ttest_1samp(d, 0.0).pvalue, abs=1e-12)


def test_one_seed_has_no_seed_component_and_d_minus_1_df() -> None:
    doc_bytes = np.full(8, 1000)
    ref = nats_for([np.linspace(1.0, 3.0, 8)], doc_bytes)
    arm = ref + nats_for([[0.02, -0.01, 0.03, 0.0, 0.01, 0.02, -0.02, 0.01]], doc_bytes)
    r = paired_interval(arm, ref, doc_bytes)
    assert r.v_seed == 0.0 and r.df == 7
    half = st.t.ppf(0.975, 7) * math.sqrt(r.v_doc)
    assert (r.lo, r.hi) == pytest.approx((r.estimate - half, r.estimate + half), abs=1e-15)


def test_document_component_resamples_documents_only() -> None:
    arm = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    ref = np.ones_like(arm)
    doc_bytes = np.array([1.0, 2.0, 1.0])
    r = paired_interval(arm, ref, doc_bytes, n_boot=6, seed=7)
    rng = np.random.default_rng(7)  # the draws, in the order they are made
    draws = rng.integers(0, 3, size=(6, 3))
    reps = []
    for row in draws:
        w = np.bincount(row, minlength=3)  # every seed kept: a document's weight is its draws
        a = (w * arm.sum(axis=0)).sum() / (LN2 * 2 * (w * doc_bytes).sum())
        b = (w * ref.sum(axis=0)).sum() / (LN2 * 2 * (w * doc_bytes).sum())
        reps.append(a - b)
    assert r.v_doc == pytest.approx(np.var(reps, ddof=1), rel=1e-12)
    per_seed = arm.sum(axis=1) / (LN2 * 4) - ref.sum(axis=1) / (LN2 * 4)
    assert r.v_seed == pytest.approx(np.var(per_seed, ddof=1) / 2, rel=1e-12)
    assert r.se == pytest.approx(math.sqrt(r.v_doc + r.v_seed), rel=1e-12)
    # The documents' effective number, (1 + 2 + 1)² / (1 + 4 + 1) = 8/3, is the df's D.
    assert r.n_docs_eff == pytest.approx(8 / 3, rel=1e-12)
    assert r.df == pytest.approx(welch_df(r.v_doc, r.v_seed, 8 / 3, 2), rel=1e-12)


def test_welch_satterthwaite_df() -> None:
    assert welch_df(1.0, 1.0, 11, 3) == pytest.approx(4.0 / (1 / 2 + 1 / 10))
    assert welch_df(0.0, 2.0, 40, 3) == pytest.approx(2.0)  # seeds alone: S - 1
    assert welch_df(2.0, 0.0, 40, 1) == pytest.approx(39.0)  # documents alone: D - 1
    assert min(2, 10) <= welch_df(0.3, 0.7, 11, 3) <= 2 + 10
    assert math.isnan(welch_df(0.0, 0.0, 5, 3))


def test_effective_number_of_documents_is_kish() -> None:
    assert effective_docs([5, 5, 5, 5]) == 4.0  # equal sizes: the count
    assert effective_docs([3000, 1000, 1000, 1000]) == 3.0  # 6000² / (9 + 1 + 1 + 1)·10⁶
    assert effective_docs([7, 0, 0]) == 1.0  # one document holds every byte
    assert effective_docs(np.array([1.0, 2.0, 1.0])) == pytest.approx(16 / 6, rel=1e-15)
    # 16 documents, two of 18,500 bytes and fourteen of 4,500: 10¹⁰ / 9.68·10⁸ = 10.33.
    nbytes = [18_500, 18_500] + [4_500] * 14
    assert effective_docs(nbytes) == pytest.approx(100_000**2 / (2 * 18_500**2 + 14 * 4_500**2),
                                                   rel=1e-15)
    for bad in ([], [0, 0], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="doc_bytes"):
            effective_docs(bad)


def test_two_seeds_count_the_documents_by_their_effective_number() -> None:
    # 4 documents, one three times the size of each other: 3 effective documents. The
    # arm differs by the same amount on each document at both seeds (no seed variance), so
    # the df is the document term's alone: n_eff - 1 = 2, not D - 1 = 3.
    doc_bytes = np.array([3000, 1000, 1000, 1000])
    ref = nats_for(np.array([[2.0, 2.5, 3.0, 1.5], [2.1, 2.4, 3.1, 1.6]]), doc_bytes)
    delta = np.array([0.05, -0.02, 0.04, -0.01])
    arm = ref + nats_for(np.tile(delta, (2, 1)), doc_bytes)
    r = paired_interval(arm, ref, doc_bytes, n_boot=2000)
    assert (r.n_seeds, r.n_docs, r.n_docs_eff) == (2, 4, 3.0)
    assert r.v_seed < 1e-30 < r.v_doc
    assert r.df == pytest.approx(2.0, rel=1e-9)
    assert r.hi - r.estimate == pytest.approx(st.t.ppf(0.975, 2.0) * r.se, rel=1e-9)
    # With seed variance too, both terms enter, the documents' with n_eff - 1 = 2 df.
    arm2 = arm + nats_for(np.array([[0.01], [-0.01]]) * np.ones((2, 4)), doc_bytes)
    r2 = paired_interval(arm2, ref, doc_bytes, n_boot=2000)
    expected = (r2.v_doc + r2.v_seed) ** 2 / (r2.v_seed**2 / 1 + r2.v_doc**2 / 2)
    assert r2.df == pytest.approx(expected, rel=1e-12)
    assert r2.df != pytest.approx((r2.v_doc + r2.v_seed) ** 2
                                  / (r2.v_seed**2 + r2.v_doc**2 / 3), rel=1e-6)
    assert welch_df(r2.v_doc, r2.v_seed, 3.0, 2) == pytest.approx(expected, rel=1e-12)


def test_contrast_of_row_classes_allows_documents_without_a_class() -> None:
    # A class of targets that some documents lack (no byte-spelled word in them): allowed
    # with allow_empty, the figure a ratio of sums, n_eff from the arms' byte shares.
    a_bytes = np.array([[100.0, 0.0, 300.0], [100.0, 0.0, 300.0]])
    b_bytes = np.array([[50.0, 50.0, 50.0], [50.0, 50.0, 50.0]])
    a = nats_for([[1.0, 0.0, 2.0], [1.1, 0.0, 2.1]], a_bytes)
    b = nats_for([[3.0, 3.0, 3.0], [3.0, 3.1, 3.0]], b_bytes)
    with pytest.raises(ValueError, match="positive byte count"):
        contrast_interval([a, b], [a_bytes, b_bytes], [1.0, -1.0])
    r = contrast_interval([a, b], [a_bytes, b_bytes], [1.0, -1.0], n_boot=500, allow_empty=True)
    assert r.estimate == pytest.approx(a.sum() / (LN2 * a_bytes.sum())
                                       - b.sum() / (LN2 * b_bytes.sum()), rel=1e-12)
    shares = a_bytes.sum(axis=0) / a_bytes.sum() + b_bytes.sum(axis=0) / b_bytes.sum()
    assert r.n_docs_eff == pytest.approx(effective_docs(shares), rel=1e-12)
    assert 0 < r.n_boot <= 500 and r.lo < r.estimate < r.hi


def test_point_estimate_is_a_ratio_of_sums_over_every_cell() -> None:
    doc_bytes = np.array([100, 300])
    arm = np.array([[50.0, 210.0], [70.0, 190.0]])
    ref = np.array([[60.0, 200.0], [80.0, 220.0]])
    r = paired_interval(arm, ref, doc_bytes, n_boot=200)
    expected = (520.0 - 560.0) / (LN2 * 800.0)  # bytes count once per seed: 2 x 400
    assert r.estimate == pytest.approx(expected, abs=1e-15)
    one = bpb_interval(arm, doc_bytes, n_boot=200)
    assert one.estimate == pytest.approx(520.0 / (LN2 * 800.0), abs=1e-15)
    assert math.isnan(one.p_value) and one.lo <= one.estimate <= one.hi


# ------------------------------------------------------------------------------ pairing


def test_paired_documents_cancel_their_difficulty() -> None:
    # Documents differ hugely in difficulty (1 to 5 bpb); the arm is 0.01 bpb better on each.
    doc_bytes = np.full(12, 1000)
    difficulty = np.tile(np.linspace(1.0, 5.0, 12), (2, 1))
    ref = nats_for(difficulty, doc_bytes)
    arm = nats_for(difficulty - 0.01, doc_bytes)
    paired = paired_interval(arm, ref, doc_bytes)
    assert paired.hi - paired.lo < 1e-9
    alone = bpb_interval(arm, doc_bytes)  # one arm's figure carries the document spread
    assert alone.hi - alone.lo > 1.0


def test_paired_seeds_cancel_what_the_arms_share() -> None:
    doc_bytes = np.array([800, 1200, 1000])
    seed_level = np.array([[1.0], [2.0], [3.0]]) * np.ones((3, 3))  # seed 0 easy, seed 2 hard
    ref = nats_for(seed_level, doc_bytes)
    arm = nats_for(seed_level + 0.05, doc_bytes)
    d = paired_interval(arm, ref, doc_bytes)
    assert (d.lo, d.hi) == pytest.approx((0.05, 0.05), abs=1e-12)
    alone = bpb_interval(arm, doc_bytes)  # the arm's own figure does vary with the seeds
    assert alone.df == pytest.approx(2.0) and alone.hi - alone.lo > 1.0


def test_the_same_inputs_give_the_same_interval() -> None:
    rng = np.random.default_rng(3)
    doc_bytes = rng.integers(100, 900, size=7)
    arm, ref = rng.uniform(100, 900, size=(2, 3, 7))
    a = paired_interval(arm, ref, doc_bytes)
    assert a == paired_interval(arm, ref, doc_bytes)
    c = paired_interval(arm, ref, doc_bytes, seed=BOOTSTRAP_SEED + 1)
    assert c.v_doc != a.v_doc and c.v_seed == a.v_seed


def test_interval_levels() -> None:
    rng = np.random.default_rng(5)
    arm, ref = rng.uniform(100, 900, size=(2, 3, 20))
    r = paired_interval(arm, ref, np.full(20, 300))
    assert TOST_CONFIDENCE == 0.90
    assert r.lo <= r.tost_lo <= r.tost_hi <= r.hi  # the 90% interval sits inside the 95%
    assert r.hi - r.estimate == pytest.approx(st.t.ppf(0.975, r.df) * r.se, rel=1e-12)
    assert r.tost_hi - r.estimate == pytest.approx(st.t.ppf(0.95, r.df) * r.se, rel=1e-12)
    assert r.p_value == pytest.approx(2 * st.t.sf(abs(r.estimate) / r.se, r.df), rel=1e-12)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        paired_interval(np.ones((2, 3)), np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="positive byte count"):
        paired_interval(np.ones((1, 2)), np.ones((1, 2)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="2-D"):
        bpb_interval(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="no \\(seed, document\\) cells"):
        bpb_interval(np.ones((0, 0)), np.ones(0))


# ------------------------------------------------------------------------------ type-I error


def _null_rejections(
    rng: np.random.Generator, n_docs: int, sd_seed: float, sd_doc: float, reps: int
) -> tuple[int, int]:
    """(rejections at p < 0.05, rejections with a normal quantile instead of t_df) over
    ``reps`` studies of 3 seeds x ``n_docs`` documents where the arms do not differ on
    average: per seed the arm is off by N(0, sd_seed), per document by N(0, sd_doc)."""
    t_rej = z_rej = 0
    for i in range(reps):
        doc_bytes = rng.integers(300, 3000, size=n_docs)
        ref = rng.uniform(1.0, 3.0, size=n_docs) + rng.normal(0.0, 0.05, size=(3, 1))
        delta = (rng.normal(0.0, sd_seed, size=(3, 1)) + rng.normal(0.0, sd_doc, size=n_docs)
                 + rng.normal(0.0, 0.003, size=(3, n_docs)))
        r = paired_interval(nats_for(ref + delta, doc_bytes), nats_for(ref, doc_bytes), doc_bytes,
                            n_boot=200, seed=i)
        t_rej += r.p_value < 0.05
        z_rej += abs(r.estimate) / r.se > st.norm.ppf(0.975)
    return t_rej, z_rej


@pytest.mark.parametrize("balanced", [False, True], ids=["seeds-dominate", "balanced"])
def test_type_one_error_with_three_seeds(balanced: bool) -> None:
    # The review's finding: resampling S = 3 seeds with percentile intervals rejected a true
    # null 9-26% of the time at nominal 5%. Per-seed sd 0.02 bpb against a per-document sd
    # of 0.02 (the seeds dominate the error of the mean) or 0.02 sqrt(D) (the two
    # components are equal).
    rng = np.random.default_rng(2024)
    reps = 2500  # Monte Carlo sd of the pooled rate: about 0.003
    rates, z_total, t_total = [], 0, 0
    for n_docs in (10, 30, 60):
        sd_doc = 0.02 * math.sqrt(n_docs) if balanced else 0.02
        t_rej, z_rej = _null_rejections(rng, n_docs, 0.02, sd_doc, reps)
        rates.append(t_rej / reps)
        t_total += t_rej
        z_total += z_rej
    assert t_total / (3 * reps) <= 0.08, rates
    assert max(rates) <= 0.09, rates  # each D, within Monte Carlo error of 0.08
    if not balanced:  # the t quantile at Satterthwaite's df is what holds it there
        assert z_total / (3 * reps) > 0.11


# ------------------------------------------------------------------------------ Holm, TOST


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
