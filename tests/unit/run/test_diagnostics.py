"""Embedding diagnostics: Spearman, 3CosAdd, drift and neighbours on hand-made matrices, the
word -> rows rules on tiny trained tokenizers, and the real benchmark files' sizes."""

from __future__ import annotations

import numpy as np
import pytest

from embinit.config import VocabConfig
from embinit.run.data.tokenizer import FIRST_WORD_ID, UNK_ID, train_tokenizer
from embinit.run.diagnostics import (
    PROBES,
    analogy_accuracy,
    embedding_diagnostics,
    load_benchmarks,
    neighbours,
    parse_analogies,
    parse_pairs,
    row_drift,
    similarity_spearman,
    word_index,
)

TEXTS = ["the king sat . the King ran , the queen sat", "Paris is a city . the city of the king"]


def dict_index(rows: dict[str, int]):
    """A word index over a hand-made vocabulary: word -> [row]."""
    return lambda w: [rows[w]] if w in rows else None


# --- similarity -------------------------------------------------------------------------------
def _angles_matrix(n: int) -> np.ndarray:
    # Row k at angle k * 10 degrees: cos(row0, rowk) falls strictly as k grows.
    theta = np.deg2rad(10.0 * np.arange(n))
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


def test_spearman_plus_and_minus_one():
    m = _angles_matrix(12)
    idx = dict_index({f"w{k}": k for k in range(12)})
    # Pairs (w0, wk), k = 1..11: cosine falls with k.
    falling = [("w0", f"w{k}", float(-k)) for k in range(1, 12)]  # human score falls too
    rising = [("w0", f"w{k}", float(k)) for k in range(1, 12)]
    assert similarity_spearman(m, falling, idx) == (pytest.approx(1.0), 11, 11)
    assert similarity_spearman(m, rising, idx) == (pytest.approx(-1.0), 11, 11)


def test_spearman_known_partial_value_and_coverage():
    m = _angles_matrix(12)
    idx = dict_index({f"w{k}": k for k in range(12)})
    # Cosine ranks of k = 1..11 are 11..1; the human ranks swap the first two pairs.
    human = [10.0, 11.0] + [float(12 - k) for k in range(3, 12)]
    pairs = [("w0", f"w{k}", h) for k, h in zip(range(1, 12), human, strict=True)]
    pairs.append(("w0", "absent", 5.0))  # not covered: left out, but counted in the total
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)), one swap of adjacent ranks: sum(d^2) = 2.
    rho, n, total = similarity_spearman(m, pairs, idx)
    assert (n, total) == (11, 12)
    assert rho == pytest.approx(1 - 6 * 2 / (11 * 120))


def test_spearman_none_below_ten_covered_pairs():
    m = _angles_matrix(12)
    idx = dict_index({f"w{k}": k for k in range(9)})
    pairs = [("w0", f"w{k}", float(k)) for k in range(1, 12)]
    assert similarity_spearman(m, pairs, idx) == (None, 8, 11)


# --- analogies --------------------------------------------------------------------------------
def test_analogy_solved_and_missed():
    # man:woman = king:queen holds by construction (gender is axis 1); "prince" is a
    # distractor close to king. In the second question the answer "apple" is far from
    # b - a + c = woman - man + king, which lands on queen: a miss.
    rows = {"man": 0, "woman": 1, "king": 2, "queen": 3, "prince": 4, "apple": 5}
    m = np.array([
        [1.0, 0.0, 0.0, 0.0],   # man
        [1.0, 1.0, 0.0, 0.0],   # woman
        [1.0, 0.0, 1.0, 0.0],   # king
        [1.0, 1.0, 1.0, 0.0],   # queen
        [1.0, 0.0, 1.0, 0.3],   # prince
        [0.0, 0.0, 0.0, 1.0],   # apple
    ])
    solved = ("man", "woman", "king", "queen")
    missed = ("man", "woman", "king", "apple")
    uncovered = ("man", "woman", "king", "emperor")
    idx = dict_index(rows)
    assert analogy_accuracy(m, [solved], idx) == (1.0, 1, 1)
    assert analogy_accuracy(m, [solved, missed], idx) == (0.5, 2, 2)
    assert analogy_accuracy(m, [solved, missed, uncovered], idx) == (0.5, 2, 3)
    # The candidates are the file's own words: without the first question queen is no
    # candidate, and apple is the only word left once man, woman and king are excluded.
    assert analogy_accuracy(m, [missed], idx) == (1.0, 1, 1)
    assert analogy_accuracy(m, [uncovered], idx) == (None, 0, 1)


def test_analogy_excludes_question_words():
    # b - a + c equals c here (a == b), so c itself would win if it were not excluded.
    rows = {"a": 0, "c": 1, "d": 2, "e": 3}
    m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    assert analogy_accuracy(m, [("a", "a", "c", "d")], dict_index(rows)) == (1.0, 1, 1)


def test_analogy_speed_20k_questions():
    import time
    rng = np.random.default_rng(0)
    words = [f"w{k}" for k in range(1000)]
    qs = [tuple(words[i] for i in rng.choice(1000, 4, replace=False)) for _ in range(20000)]
    m = rng.standard_normal((16384, 128)).astype(np.float32)
    idx = dict_index({w: 300 + k for k, w in enumerate(words)})
    analogy_accuracy(m, qs[:10], idx)  # warm-up: BLAS threads and memo, not the measured work
    t = time.perf_counter()
    acc, n, total = analogy_accuracy(m, qs, idx)
    assert time.perf_counter() - t < 1.0
    assert (n, total) == (20000, 20000) and 0.0 <= acc < 0.01  # random vectors: chance ~1/997


# --- drift ------------------------------------------------------------------------------------
def test_drift_identical_orthogonal_and_mask():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    ortho = np.array([[0.0, 5.0], [-1.0, 0.0], [4.0, -3.0]])
    everything = np.ones(3, dtype=bool)
    assert row_drift(a, a, everything) == pytest.approx(1.0)
    assert row_drift(a, 7 * a, everything) == pytest.approx(1.0)  # scale does not count
    assert row_drift(a, ortho, everything) == pytest.approx(0.0)
    mixed = np.array([[1.0, 0.0], [0.0, -2.0], [3.0, 4.0]])  # +1, -1, +1
    assert row_drift(a, mixed, everything) == pytest.approx(1 / 3)
    assert row_drift(a, mixed, np.array([False, True, False])) == pytest.approx(-1.0)
    assert row_drift(a, mixed, np.zeros(3, dtype=bool)) is None


# --- neighbours -------------------------------------------------------------------------------
def test_neighbours_exclude_self_and_unlabelled_rows():
    m = np.array([[1.0, 0.0], [0.99, 0.1], [0.9, 0.4], [1.0, 0.01], [0.0, 1.0]])
    labels = ["king", "queen", "prince", None, "apple"]  # row 3 is a special: never listed
    idx = dict_index({"king": 0})
    got = neighbours(m, ["king", "absent"], idx, labels, k=2)
    assert got == {"king": ["queen", "prince"], "absent": None}


# --- word -> rows on real (tiny) tokenizers ----------------------------------------------------
def test_word_index_byte_word_vocab():
    cfg = VocabConfig(name="word", oov="bytes", size=400, min_count=2)
    tok = train_tokenizer(TEXTS, cfg)
    index = word_index(tok, "word", "bytes")
    vocab = tok.get_vocab()
    # " the" x4, " king"/" sat"/" city" x2 are words; " King" only once (below min_count).
    assert index("the") == [vocab["Ġthe"]] and vocab["Ġthe"] >= FIRST_WORD_ID
    assert index("King") == [vocab["Ġking"]]  # falls back to lowercase
    assert index("queen") is None  # once only: spelled in byte tokens, so not covered
    assert index("a") is None  # " a" is only spelled in bytes here
    assert index("New York") is None  # two pre-tokens


def test_word_index_capitalized_fallback():
    cfg = VocabConfig(name="word", oov="bytes", size=400, min_count=1)
    tok = train_tokenizer(["x Paris y Paris"], cfg)
    index = word_index(tok, "word", "bytes")
    assert index("paris") == [tok.token_to_id("ĠParis")]  # as given and lowercase miss


def test_word_index_closed_vocab():
    cfg = VocabConfig(name="word", oov="unk", size=100, min_count=2)
    tok = train_tokenizer(TEXTS, cfg)
    index = word_index(tok, "word", "unk")
    assert index("the") == [tok.token_to_id("the")]
    assert index("THE") == [tok.token_to_id("the")]
    assert index("queen") is None  # <unk>
    assert tok.encode("queen").ids == [UNK_ID]


def test_word_index_bpe_always_covered():
    cfg = VocabConfig(name="bpe", size=300, min_count=1)
    tok = train_tokenizer(TEXTS * 5, cfg)
    index = word_index(tok, "bpe", None)
    ids = tok.encode(" xylophone", add_special_tokens=False).ids
    assert index("xylophone") == ids and len(ids) > 1  # unseen word: its byte-level pieces


def test_bpe_word_is_mean_of_its_rows():
    cfg = VocabConfig(name="bpe", size=300, min_count=1)
    tok = train_tokenizer(TEXTS * 5, cfg)
    index = word_index(tok, "bpe", None)
    ids = index("xylophone")
    V = tok.get_vocab_size()
    m = np.zeros((V, 2))
    m[:, 0] = 1.0
    m[ids, 1] = 1.0
    m[ids[0], 1] = 1.0 + len(ids)  # mean of the word's rows = (1, 2); cosine 1 with row (1, 2)
    probe = np.array([[1.0, 2.0]])
    m = np.vstack([m, probe])
    labels = [None] * V + ["target"]
    assert neighbours(m, ["xylophone"], index, labels, k=1) == {"xylophone": ["target"]}


# --- the whole section ------------------------------------------------------------------------
KEYS = {"wordsim353_init", "wordsim353_final", "simlex999_init", "simlex999_final",
        "analogy_init", "analogy_final", "drift_covered", "drift_fallback", "wordsim353_n",
        "simlex999_n", "analogy_n", "neighbours"}


def test_embedding_diagnostics_keys_and_drift_masks():
    cfg = VocabConfig(name="word", oov="bytes", size=400, min_count=1)
    tok = train_tokenizer(TEXTS, cfg)
    V = tok.get_vocab_size()
    rng = np.random.default_rng(0)
    init = rng.standard_normal((V, 8))
    final = init.copy()
    from_vectors = np.zeros(V, dtype=bool)
    from_vectors[FIRST_WORD_ID:] = True
    counts = np.zeros(V, dtype=np.int64)
    counts[5] = 3  # one seen byte row: it turns to face the other way
    final[5] = -init[5]
    final[6] = rng.standard_normal(8)  # unseen byte row: not in either drift
    out = embedding_diagnostics(init, final, tok, "word", "bytes", from_vectors, counts)
    assert set(out) == KEYS
    assert out["drift_covered"] == pytest.approx(1.0)
    assert out["drift_fallback"] == pytest.approx(-1.0)
    assert out["wordsim353_final"] is None  # a tiny vocabulary covers < 10 pairs
    assert out["neighbours"]["init"]["king"] is not None
    assert set(out["neighbours"]["final"]) == set(PROBES)
    start = embedding_diagnostics(init, None, tok, "word", "bytes", from_vectors, None)
    assert set(start) == KEYS and start["neighbours"]["final"] is None
    assert all(start[k] is None for k in ("wordsim353_final", "simlex999_final",
                                          "analogy_final", "drift_covered", "drift_fallback"))


def test_embedding_diagnostics_bpe_covers_every_item():
    cfg = VocabConfig(name="bpe", size=300, min_count=1)
    tok = train_tokenizer(TEXTS * 5, cfg)
    V = tok.get_vocab_size()
    init = np.random.default_rng(1).standard_normal((V, 16))
    out = embedding_diagnostics(init, init, tok, "bpe", None, np.zeros(V, dtype=bool), None)
    assert (out["wordsim353_n"], out["simlex999_n"], out["analogy_n"]) == (353, 999, 19544)
    assert out["wordsim353_init"] == out["wordsim353_final"]  # same matrix, same score
    assert out["drift_covered"] is None and out["drift_fallback"] == pytest.approx(1.0)


# --- benchmark files --------------------------------------------------------------------------
def test_benchmark_files_parse_to_known_sizes():
    b = load_benchmarks()
    assert len(b.wordsim353) == 353 and len(b.simlex999) == 999 and len(b.analogy) == 19544
    assert b.wordsim353[0] == ("love", "sex", 6.77)
    assert b.simlex999[0] == ("old", "new", 1.58)
    assert b.analogy[0] == ("Athens", "Greece", "Baghdad", "Iraq")
    assert load_benchmarks() is b  # parsed once


def test_parsers_skip_comments_and_sections():
    assert parse_pairs(["# a comment\n", "a\tb\t1.5\n", "\n"]) == (("a", "b", 1.5),)
    assert parse_analogies([": capital\n", "a b c d\n"]) == (("a", "b", "c", "d"),)
