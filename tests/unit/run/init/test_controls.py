"""Controls (shuffled, matched_random), scale policies, OOV-row rules and eligible rows."""

import numpy as np
import pytest
from gensim.models import KeyedVectors

from embinit.config import InitConfig
from embinit.errors import DataError
from embinit.run.init.initialization import (
    init_matrix,
    oov_rows,
    scale_rows,
)

D = 16
WORDS = [f"w{i}" for i in range(40)]
VOCAB = WORDS + [f"oov{i}" for i in range(10)]  # 40 covered rows, 10 without a vector


def make_kv(words: list[str], dim: int, seed: int = 0) -> KeyedVectors:
    kv = KeyedVectors(vector_size=dim)
    vecs = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32)
    kv.add_vectors(words, vecs)
    return kv


def cfg(**kw) -> InitConfig:
    base = dict(name="word2vec", seed=0, min_coverage=0.0)
    base.update(kw)
    return InitConfig(**base)


def rows_sorted(m: np.ndarray) -> np.ndarray:
    return m[np.lexsort(m.T[::-1])]


@pytest.fixture(scope="module")
def kv() -> KeyedVectors:
    return make_kv(WORDS, dim=8)  # 8 -> 16: orthogonal projection, as for GloVe


# --- controls ---------------------------------------------------------------------------------

def test_shuffled_has_exactly_the_source_rows_permuted(kv):
    source = init_matrix(VOCAB, D, cfg(), seed=3, kv=kv)
    shuffled = init_matrix(VOCAB, D, cfg(name="shuffled", source="word2vec"), seed=3, kv=kv)
    cov = source.from_vectors
    np.testing.assert_array_equal(shuffled.from_vectors, cov)
    assert cov.sum() == 40
    # The same multiset of covered rows, bit for bit ...
    np.testing.assert_array_equal(rows_sorted(shuffled.matrix[cov]), rows_sorted(source.matrix[cov]))
    # ... but moved: (almost) no row keeps its token.
    same = (shuffled.matrix[cov] == source.matrix[cov]).all(axis=1)
    assert same.sum() <= 3
    # Fallback rows untouched; scale and coverage those of the source arm.
    np.testing.assert_array_equal(shuffled.matrix[~cov], source.matrix[~cov])
    assert shuffled.scale == source.scale and shuffled.coverage_types == source.coverage_types
    # Same spectrum (a row permutation leaves singular values unchanged).
    np.testing.assert_allclose(np.linalg.svd(shuffled.matrix[cov], compute_uv=False),
                               np.linalg.svd(source.matrix[cov], compute_uv=False), rtol=1e-5)
    # The permutation is seeded: the same seed rebuilds the same control.
    again = init_matrix(VOCAB, D, cfg(name="shuffled"), seed=3, kv=kv)
    np.testing.assert_array_equal(again.matrix, shuffled.matrix)


def test_matched_random_keeps_each_rows_norm_not_its_direction(kv):
    source = init_matrix(VOCAB, D, cfg(), seed=5, kv=kv)
    ctrl = init_matrix(VOCAB, D, cfg(name="matched_random"), seed=5, kv=kv)
    cov = source.from_vectors
    np.testing.assert_array_equal(ctrl.from_vectors, cov)
    src_norms = np.linalg.norm(source.matrix[cov].astype(np.float64), axis=1)
    new_norms = np.linalg.norm(ctrl.matrix[cov].astype(np.float64), axis=1)
    np.testing.assert_allclose(new_norms, src_norms, rtol=1e-6)
    # Directions are fresh: |cos| of random 16-d directions averages ~0.2 (sqrt(2/(pi*16))).
    cos = (ctrl.matrix[cov] * source.matrix[cov]).sum(1) / (new_norms * src_norms)
    assert np.abs(cos).mean() < 0.4
    np.testing.assert_array_equal(ctrl.matrix[~cov], source.matrix[~cov])


def test_controls_keep_the_paired_fallback_rows_of_scratch(kv):
    scratch = init_matrix(VOCAB, D, InitConfig(name="scratch", seed=0), seed=9)
    for name in ("shuffled", "matched_random"):
        ctrl = init_matrix(VOCAB, D, cfg(name=name), seed=9, kv=kv)
        rest = ~ctrl.from_vectors
        np.testing.assert_array_equal(ctrl.matrix[rest], scratch.matrix[rest])


def test_control_without_vectors_names_its_source():
    with pytest.raises(ValueError, match=r"init\.source='glove'"):
        init_matrix(VOCAB, D, cfg(name="shuffled", source="glove"), seed=0)


# --- scale policies on hand-made rows ------------------------------------------------------------

def test_scale_raw_and_std():
    x = np.array([[2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, 2.0]])  # mean 0, std 2
    rows, factor = scale_rows(x, "raw", 0.02, 2)
    assert factor == 1.0
    np.testing.assert_array_equal(rows, x)
    rows, factor = scale_rows(x, "std", 0.02, 2)
    assert factor == pytest.approx(0.01)
    np.testing.assert_allclose(rows, x * 0.01)
    assert rows.std() == pytest.approx(0.02)


def test_scale_standardized_centres_and_scales_each_dimension():
    # Column means 2, 20, 5; population stds 1, 10, 0 (a constant column stays at 0).
    x = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]])
    rows, factor = scale_rows(x, "standardized", 0.02, 3)
    assert factor is None
    np.testing.assert_allclose(rows, [[-0.02, -0.02, 0.0], [0.02, 0.02, 0.0]])
    with pytest.raises(DataError, match="init.scale=std or raw"):
        scale_rows(np.ones((4, 3)), "standardized", 0.02, 3)


def test_scale_norm_matched_gives_every_row_a_scratch_rows_norm():
    x = np.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, -2.0], [0.0, 0.0, 0.0, 0.0]])
    rows, factor = scale_rows(x, "norm_matched", 0.02, 4)  # target 0.02 * sqrt(4) = 0.04
    assert factor is None
    np.testing.assert_allclose(rows, [[0.024, 0.032, 0, 0], [0, 0, 0, -0.04], [0, 0, 0, 0]])


def test_scale_policies_through_the_init(kv):
    std = init_matrix(VOCAB, D, cfg(scale="standardized"), seed=1, kv=kv)
    cov = std.matrix[std.from_vectors].astype(np.float64)
    np.testing.assert_allclose(cov.mean(axis=0), 0.0, atol=1e-8)
    np.testing.assert_allclose(cov.std(axis=0), 0.02, rtol=1e-5)
    nm = init_matrix(VOCAB, D, cfg(scale="norm_matched"), seed=1, kv=kv)
    norms = np.linalg.norm(nm.matrix[nm.from_vectors].astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, 0.02 * np.sqrt(D), rtol=1e-6)
    raw = init_matrix(VOCAB, D, cfg(scale="raw"), seed=1, kv=kv)
    # The orthogonal 8 -> 16 projection keeps each vector's norm.
    np.testing.assert_allclose(np.linalg.norm(raw.matrix[:40], axis=1),
                               np.linalg.norm(kv.vectors, axis=1), rtol=1e-5)


# --- OOV rows ------------------------------------------------------------------------------------

def test_oov_rows_mean_is_the_covered_rows_mean(kv):
    res = init_matrix(VOCAB, D, cfg(oov_rows="mean"), seed=2, kv=kv)
    mean = res.matrix[res.from_vectors].astype(np.float64).mean(axis=0)
    rest = res.matrix[~res.from_vectors]
    assert rest.shape == (10, D)
    np.testing.assert_allclose(rest, np.broadcast_to(mean, rest.shape), atol=1e-8)
    # The covered rows are those of the default arm: only the OOV rows changed.
    base = init_matrix(VOCAB, D, cfg(), seed=2, kv=kv)
    np.testing.assert_array_equal(res.matrix[res.from_vectors], base.matrix[base.from_vectors])


def test_oov_rows_mean_cov_matches_the_covered_mean_and_covariance():
    # Mean (5, -3), population covariance diag(0.5, 2).
    covered = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]) + [5.0, -3.0]
    draws = oov_rows(covered, 200_000, "mean_cov", np.random.default_rng(0))
    # Standard errors: mean sqrt(2/2e5) = 0.003, variance 2*sqrt(2/2e5) = 0.006.
    np.testing.assert_allclose(draws.mean(axis=0), [5.0, -3.0], atol=0.02)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), [[0.5, 0.0], [0.0, 2.0]], atol=0.04)


def test_oov_rows_mean_cov_stays_in_the_covered_rows_span():
    # Three covered rows in 3-d: their covariance is singular (rank 2); draws stay in the
    # plane through the mean that the rows span, as a Gaussian with that covariance must.
    covered = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    draws = oov_rows(covered, 1000, "mean_cov", np.random.default_rng(1))
    np.testing.assert_allclose(draws[:, 2], 1.0, atol=1e-9)
    assert draws[:, :2].std(axis=0).min() > 0.5


def test_oov_rows_need_covered_rows():
    kv = make_kv(["unused"], dim=D)
    with pytest.raises(DataError, match="init.oov_rows=random"):
        init_matrix(VOCAB, D, cfg(oov_rows="mean"), seed=0, kv=kv)


# --- eligible rows -------------------------------------------------------------------------------

def test_eligible_rows_for_scratch_and_vector_arms(kv):
    keys = [None, None] + VOCAB[2:]
    s = init_matrix(VOCAB, D, InitConfig(name="scratch", seed=0), seed=0, vector_keys=keys)
    np.testing.assert_array_equal(s.eligible, [False, False] + [True] * 48)
    assert init_matrix(VOCAB, D, InitConfig(name="scratch", seed=0), seed=0).eligible.all()
    w = init_matrix(VOCAB, D, cfg(), seed=0, kv=kv, vector_keys=keys)
    np.testing.assert_array_equal(w.eligible, s.eligible)
    assert w.n_covered == 38 and w.coverage_types == 38 / 48
    with pytest.raises(ValueError, match="vector_keys"):
        init_matrix(VOCAB, D, InitConfig(name="scratch", seed=0), seed=0, vector_keys=keys[:3])
