import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from embinit.config import InitConfig, VocabConfig
from embinit.errors import ConfigError, DataError
from embinit.run.data.tokenizer import FIRST_WORD_ID, train_tokenizer, vector_lookup_keys
from embinit.run.init.initialization import (
    init_matrix,
    projection_matrix,
    rescale_factor,
    scratch_matrix,
    vector_init,
)


def make_kv(words: list[str], dim: int, seed: int = 0) -> KeyedVectors:
    kv = KeyedVectors(vector_size=dim)
    vecs = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32)
    kv.add_vectors(words, vecs)
    return kv


def w2v_cfg(**kw) -> InitConfig:
    base = dict(name="word2vec", seed=0, min_coverage=0.0)
    base.update(kw)
    return InitConfig(**base)


VOCAB = ["the", "The", "cat", "<unk>", "zzz"]
COUNTS = np.array([10, 5, 3, 2, 80])


def test_covered_row_equals_vector_times_projection_times_scale():
    kv = make_kv(["the", "cat", "dog"], dim=3)
    cfg = w2v_cfg(projection="orthogonal")
    res = vector_init(VOCAB, kv, 5, cfg, np.random.default_rng(7))
    # Replay the documented draw order: fallback matrix, then projection.
    rng = np.random.default_rng(7)
    fallback = scratch_matrix(len(VOCAB), 5, cfg.std, rng)
    P = projection_matrix(3, 5, "orthogonal", rng)
    covered = np.stack([kv["the"], kv["the"], kv["cat"]]).astype(np.float64) @ P
    assert res.scale == pytest.approx(rescale_factor(covered, cfg.std), rel=1e-12)
    expected_cat = torch.from_numpy((kv["cat"].astype(np.float64) @ P * res.scale).astype(np.float32))
    torch.testing.assert_close(torch.from_numpy(res.matrix[2]), expected_cat)
    # "The" takes the vector of "the" through the lowercase fallback
    torch.testing.assert_close(torch.from_numpy(res.matrix[1]), torch.from_numpy(res.matrix[0]))
    # uncovered rows are the fallback draws, untouched
    np.testing.assert_array_equal(res.matrix[[3, 4]], fallback[[3, 4]])
    assert res.matrix.dtype == np.float32 and res.matrix.shape == (5, 5)
    # the covered rows' per-element std equals init.std
    assert np.std(res.matrix[res.from_vectors], dtype=np.float64) == pytest.approx(cfg.std, rel=1e-6)


def test_equal_dims_row_is_vector_times_scale_and_scale_raw_keeps_vector():
    kv = make_kv(["the", "cat"], dim=4)
    res = vector_init(["cat", "x"], kv, 4, w2v_cfg(scale="raw"), np.random.default_rng(0))
    assert res.scale == 1.0
    np.testing.assert_array_equal(res.matrix[0], kv["cat"])


@pytest.mark.parametrize("in_dim,out_dim", [(8, 20), (20, 20), (1, 3)])
def test_orthogonal_projection_preserves_inner_products(in_dim, out_dim):
    P = projection_matrix(in_dim, out_dim, "orthogonal", np.random.default_rng(0))
    if in_dim == out_dim:
        assert P is None  # identity
        return
    assert P.shape == (in_dim, out_dim)
    np.testing.assert_allclose(P @ P.T, np.eye(in_dim), atol=1e-12)
    x = np.random.default_rng(1).standard_normal((6, in_dim))
    np.testing.assert_allclose((x @ P) @ (x @ P).T, x @ x.T, atol=1e-10)


def test_orthogonal_projection_down_has_orthonormal_columns():
    P = projection_matrix(50, 16, "orthogonal", np.random.default_rng(0))
    assert P.shape == (50, 16)
    np.testing.assert_allclose(P.T @ P, np.eye(16), atol=1e-12)


def test_pad_projection():
    P = projection_matrix(2, 4, "pad", np.random.default_rng(0))
    np.testing.assert_array_equal(P, [[1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(np.array([[3.0, -2.0]]) @ P, [[3, -2, 0, 0]])
    with pytest.raises(ConfigError, match="orthogonal"):
        projection_matrix(5, 4, "pad", np.random.default_rng(0))


def test_none_projection():
    assert projection_matrix(8, 8, "none", np.random.default_rng(0)) is None
    with pytest.raises(ConfigError, match=r"dimension 50.*d_model is 128.*init\.projection=orthogonal.*init\.dim=128"):
        projection_matrix(50, 128, "none", np.random.default_rng(0))


def test_fallback_rows_have_mean_zero_and_fallback_std():
    # 20000 x 64 = 1.28M draws of N(0, 0.05): the standard error of the sample mean is
    # 0.05/sqrt(1.28e6) = 4.4e-5 and that of the sample std about 0.05/sqrt(2*1.28e6)
    # = 3.1e-5, so tolerances of 5e-4 (mean) and 1% = 5e-4 (std) are > 10 standard errors.
    vocab = ["hit"] + [f"t{i}" for i in range(19_999)]
    kv = make_kv(["hit"], dim=64)
    res = vector_init(vocab, kv, 64, w2v_cfg(fallback_std=0.05), np.random.default_rng(0))
    rows = res.matrix[~res.from_vectors]
    assert rows.shape == (19_999, 64)
    assert abs(rows.mean(dtype=np.float64)) < 5e-4
    assert abs(rows.std(dtype=np.float64) - 0.05) < 5e-4


def test_coverage_exact_types_and_tokens_with_lowercase_fallback():
    kv = make_kv(["the", "cat", "dog"], dim=4)
    res = vector_init(VOCAB, kv, 4, w2v_cfg(), np.random.default_rng(0), COUNTS)
    assert res.n_covered == 3 and res.n_lowercase_hits == 1
    assert res.coverage_types == 3 / 5
    assert res.coverage_tokens == 18 / 100
    np.testing.assert_array_equal(res.from_vectors, [True, True, True, False, False])

    off = vector_init(VOCAB, kv, 4, w2v_cfg(lowercase_fallback=False), np.random.default_rng(0), COUNTS)
    assert off.n_covered == 2 and off.n_lowercase_hits == 0
    assert off.coverage_types == 2 / 5 and off.coverage_tokens == 13 / 100


def test_exact_match_preferred_over_lowercase():
    kv = make_kv(["apple", "Apple"], dim=4)
    res = vector_init(["Apple"], kv, 4, w2v_cfg(scale="raw"), np.random.default_rng(0))
    assert res.n_lowercase_hits == 0
    np.testing.assert_array_equal(res.matrix[0], kv["Apple"])


def test_below_min_coverage_is_a_data_error():
    kv = make_kv(["the", "cat"], dim=4)
    with pytest.raises(DataError, match=r"only 2 of 5 vocabulary types.*lowercase_fallback"):
        vector_init(VOCAB, kv, 4, w2v_cfg(min_coverage=0.5, lowercase_fallback=False),
                    np.random.default_rng(0))


def test_same_seed_same_matrix():
    kv = make_kv(["the", "cat"], dim=3)
    a = init_matrix(VOCAB, 8, w2v_cfg(), seed=3, kv=kv)
    b = init_matrix(VOCAB, 8, w2v_cfg(), seed=3, kv=kv)
    c = init_matrix(VOCAB, 8, w2v_cfg(), seed=4, kv=kv)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert not np.array_equal(a.matrix, c.matrix)


def test_scratch_and_paired_fallback_rows():
    vocab = [f"t{i}" for i in range(50)]
    s = init_matrix(vocab, 16, InitConfig(name="scratch", seed=0), seed=11)
    assert s.coverage_types is None and s.coverage_tokens is None and s.scale is None
    assert s.matrix.dtype == np.float32 and s.matrix.shape == (50, 16) and not s.from_vectors.any()
    # With the same seed, a vector arm's uncovered rows equal the scratch arm's rows.
    kv = make_kv(["t3", "t7"], dim=16)
    w = init_matrix(vocab, 16, w2v_cfg(), seed=11, kv=kv)
    np.testing.assert_array_equal(w.matrix[~w.from_vectors], s.matrix[~w.from_vectors])


def test_rescale_factor():
    v = np.array([[1.0, -1.0], [1.0, -1.0]])  # population std 1
    assert rescale_factor(v, 0.02) == pytest.approx(0.02)
    with pytest.raises(DataError, match="zero variance"):
        rescale_factor(np.ones((3, 2)), 0.02)


def test_token_counts_shape_checked_and_vectors_required():
    kv = make_kv(["the"], dim=4)
    with pytest.raises(ValueError, match="token_counts"):
        vector_init(VOCAB, kv, 4, w2v_cfg(), np.random.default_rng(0), np.ones(3))
    with pytest.raises(ValueError, match="kv"):
        init_matrix(VOCAB, 4, w2v_cfg(), seed=0)


# --- byte-level vocabularies: which rows may take a vector ------------------------------------

WB_TEXTS = ["the cat sat on the mat. The cat ran to the dog."] * 2


def word_bytes_tokenizer():
    return train_tokenizer(WB_TEXTS, VocabConfig(name="word", oov="bytes", size=300, min_count=2))


def test_word_bytes_keys_exclude_specials_and_bytes():
    tok = word_bytes_tokenizer()
    cfg = VocabConfig(name="word", oov="bytes", size=300, min_count=2)
    internal = vector_lookup_keys(tok, cfg, external=False)
    external = vector_lookup_keys(tok, cfg, external=True)
    assert internal[:FIRST_WORD_ID] == [None] * FIRST_WORD_ID == external[:FIRST_WORD_ID]
    words = [tok.id_to_token(i) for i in range(FIRST_WORD_ID, tok.get_vocab_size())]
    assert internal[FIRST_WORD_ID:] == words  # Word2Vec trained here sees the token strings
    ext = dict(zip(words, external[FIRST_WORD_ID:], strict=True))
    assert ext["Ġthe"] == "the" and ext["ĠThe"] == "The" and ext["the"] == "the"
    assert ext["Ġcat"] == "cat" and "." not in ext  # single bytes are byte rows


def test_byte_level_external_keys_decode_and_skip_fragments():
    tok = train_tokenizer(["naïve café 漢字  done\n"] * 3, VocabConfig(name="bpe", size=300))
    keys = vector_lookup_keys(tok, VocabConfig(name="bpe", size=300), external=True)
    assert keys[0] is None and keys[1] is None  # specials: no vector
    by_token = {tok.id_to_token(i): k for i, k in enumerate(keys)}
    assert by_token["a"] == "a" and by_token["Ã"] is None  # half of a UTF-8 character
    assert by_token["Ġ"] is None and by_token["Ċ"] is None  # whitespace only
    internal = vector_lookup_keys(tok, VocabConfig(name="bpe", size=300), external=False)
    assert internal[2:] == [tok.id_to_token(i) for i in range(2, tok.get_vocab_size())]
    # The closed vocabulary: tokens are text; <unk> is a real token, EOD never is.
    closed = VocabConfig(name="word", oov="unk", size=100, min_count=1)
    ctok = train_tokenizer(WB_TEXTS, closed)
    for external in (False, True):
        ckeys = vector_lookup_keys(ctok, closed, external=external)
        assert ckeys[0] is None and ckeys[1] == "<unk>"
        assert ckeys[2:] == [ctok.id_to_token(i) for i in range(2, ctok.get_vocab_size())]


def test_word_bytes_init_byte_rows_stay_scratch_and_words_take_vectors():
    tok = word_bytes_tokenizer()
    cfg_v = VocabConfig(name="word", oov="bytes", size=300, min_count=2)
    vocab = [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    V, d = len(vocab), 6
    # Word2Vec keys as trained here: word tokens, byte tokens and EOD all have vectors, but
    # byte rows and specials must not take them.
    kv = make_kv(["Ġthe", "Ġcat", "t", "Ġ", ".", "<|endoftext|>", "<unk>"], dim=d)
    keys = vector_lookup_keys(tok, cfg_v, external=False)
    counts = np.arange(V, dtype=np.int64) + 1
    cfg = w2v_cfg()
    res = init_matrix(vocab, d, cfg, seed=5, kv=kv, token_counts=counts, vector_keys=keys)
    scratch = init_matrix(vocab, d, InitConfig(name="scratch", seed=0), seed=5)
    np.testing.assert_array_equal(res.matrix[:FIRST_WORD_ID], scratch.matrix[:FIRST_WORD_ID])
    assert not res.from_vectors[:FIRST_WORD_ID].any()
    i_the, i_cat = tok.token_to_id("Ġthe"), tok.token_to_id("Ġcat")
    covered = np.stack([kv["Ġthe"], kv["Ġcat"]]).astype(np.float64)
    assert res.scale == pytest.approx(rescale_factor(covered, cfg.std), rel=1e-12)
    np.testing.assert_allclose(res.matrix[i_the], kv["Ġthe"] * res.scale, rtol=1e-6)
    np.testing.assert_allclose(res.matrix[i_cat], kv["Ġcat"] * res.scale, rtol=1e-6)
    assert np.flatnonzero(res.from_vectors).tolist() == sorted([i_the, i_cat])
    # Denominators: the word rows only (ids >= 258), types and their train tokens.
    n_words = V - FIRST_WORD_ID
    assert res.n_covered == 2 and res.coverage_types == 2 / n_words
    assert res.coverage_tokens == pytest.approx(
        (counts[i_the] + counts[i_cat]) / counts[FIRST_WORD_ID:].sum())
    # Uncovered word rows keep the scratch draw too (a paired comparison).
    rest = ~res.from_vectors
    np.testing.assert_array_equal(res.matrix[rest], scratch.matrix[rest])


def test_glove_style_lookup_maps_byte_level_words_to_text():
    tok = word_bytes_tokenizer()
    cfg_v = VocabConfig(name="word", oov="bytes", size=300, min_count=2)
    vocab = [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    kv = make_kv(["the", "cat", "dog", "a", "<unk>"], dim=4)  # lowercased, like GloVe
    keys = vector_lookup_keys(tok, cfg_v, external=True)
    res = init_matrix(vocab, 4, w2v_cfg(name="glove", scale="raw"), seed=0, kv=kv,
                      vector_keys=keys)
    for token, word in (("Ġthe", "the"), ("ĠThe", "the"), ("the", "the"), ("Ġcat", "cat")):
        np.testing.assert_array_equal(res.matrix[tok.token_to_id(token)], kv[word])
    assert res.n_lowercase_hits == 1  # "ĠThe" -> "The" -> "the"
    assert not res.from_vectors[:FIRST_WORD_ID].any()  # "a" and "<unk>" stay random


def test_vector_keys_length_checked_and_all_none_is_zero_coverage():
    kv = make_kv(["the"], dim=4)
    with pytest.raises(ValueError, match="vector_keys"):
        vector_init(VOCAB, kv, 4, w2v_cfg(), np.random.default_rng(0), vector_keys=["the"])
    res = vector_init(VOCAB, kv, 4, w2v_cfg(), np.random.default_rng(0), COUNTS,
                      vector_keys=[None] * len(VOCAB))
    assert res.n_covered == 0 and res.coverage_types == 0.0 and res.coverage_tokens == 0.0
