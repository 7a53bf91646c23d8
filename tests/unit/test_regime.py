"""Regime coordinates: exact on hand-made counts, and the seed's own coordinates."""

import numpy as np
import pytest

from embinit.config import ModelConfig
from embinit.params import param_breakdown
from embinit.regime import FRESH_EPOCHS, regime_coordinates, row_occurrences, seed_coordinates


def test_coordinates_on_hand_made_counts():
    params = {"total": 1000, "embedding": 400, "output_head": 0, "non_embedding": 600}
    counts = np.array([0, 0, 1, 3, 6, 10, 20, 60, 100, 200])  # 400 train tokens, 10 rows
    r = regime_coordinates(params, tokens_seen=800, train_token_counts=counts,
                           spelled_rate=0.125)
    assert r["epochs"] == 2.0
    assert r["tokens_per_param"] == 0.8
    assert r["tokens_per_nonembedding_param"] == pytest.approx(800 / 600)
    assert r["embedding_share"] == 0.4
    occ = counts * 2.0
    assert r["row_occurrences_median"] == float(np.median(occ)) == 16.0
    assert r["row_occurrences_p10"] == pytest.approx(0.0)
    assert r["row_occurrences_mean"] == 80.0
    assert r["rows_never_seen"] == 0.2
    assert r["rows_seen_under_10"] == 0.4  # 0, 0, 2, 6
    assert r["spelled_word_rate"] == 0.125
    assert r["beyond_fresh_epochs"] is False
    many = regime_coordinates(params, tokens_seen=int(400 * (FRESH_EPOCHS + 1)),
                              train_token_counts=counts)
    assert many["beyond_fresh_epochs"] is True and many["spelled_word_rate"] is None


def test_untied_head_counts_as_embedding():
    p = param_breakdown(ModelConfig(name="t", n_layer=1, n_head=1, d_model=8, block_size=4,
                                    tie_embeddings=False), 10)
    r = regime_coordinates(p, 100, np.ones(10))
    assert r["embedding_share"] == pytest.approx(160 / p["total"])
    assert r["tokens_per_nonembedding_param"] == pytest.approx(100 / p["non_embedding"])


def test_row_occurrences_refuses_bad_epochs():
    with pytest.raises(ValueError, match="epochs"):
        row_occurrences(np.ones(3), float("nan"))


def test_seed_coordinates_are_gpt2_small():
    rows = {(r["vocab"], r["tokens"]): r for r in seed_coordinates()}
    bpe = rows[("bpe", 300e6)]
    assert bpe["params"] == 124_439_808
    non_emb = 124_439_808 - 50_257 * 768
    assert bpe["tokens_per_nonembedding_param"] == pytest.approx(300e6 / non_emb)
    assert 3.4 < bpe["tokens_per_nonembedding_param"] < 3.6  # the 3.5-35
    assert 34 < rows[("bpe", 3e9)]["tokens_per_nonembedding_param"] < 36
    assert rows[("word", 3e9)]["row_occurrences_mean"] == 30_000.0
    assert rows[("word", 300e6)]["embedding_share"] > bpe["embedding_share"]
