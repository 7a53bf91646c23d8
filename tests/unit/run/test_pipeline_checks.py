"""The pipeline's pure checks: step-0 golden check and held-out targets by row class."""

import math

import numpy as np
import pytest

from embinit.run.pipeline import (
    ROW_COVERED,
    ROW_NO_KEY,
    ROW_UNCOVERED,
    doc_row_classes,
    row_classes,
    step0_check,
    word2vec_covered,
)


def test_step0_check_compares_with_ln_v_and_flags_a_start_far_above() -> None:
    ok = step0_check(9.65, 16384)
    assert ok is not None
    assert ok["ln_vocab"] == pytest.approx(math.log(16384))
    assert ok["excess"] == pytest.approx(9.65 - 9.704060527839234)
    assert not ok["flagged"]
    assert step0_check(math.log(8192) + 0.3, 8192)["flagged"]
    assert step0_check(None, 8192) is None


def test_row_classes_split_targets_and_keep_specials_apart() -> None:
    # ids: 0 = EOD (special), 1 = <unk> (special), 2-3 byte rows, 4 a word row that received
    # a vector, 5 a word row that could have and did not (a random row for a known word).
    rows = np.array([ROW_NO_KEY, ROW_NO_KEY, ROW_NO_KEY, ROW_NO_KEY, ROW_COVERED, ROW_UNCOVERED])
    ids = np.array([4, 2, 3, 5, 0, 4])
    nbytes = np.array([3, 1, 1, 4, 0, 3])
    nll = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # targets ids[1:] = 2, 3, 5, 0, 4
    out = row_classes(nll, ids, nbytes, None, rows, specials=(0, 1))
    assert out["covered_rows"] == {"tokens": 1, "bytes": 3, "nats": 5.0, "charge_nats": 0.0}
    assert out["uncovered_rows"] == {"tokens": 1, "bytes": 4, "nats": 3.0, "charge_nats": 0.0}
    # vector_rows, the one vector class of older records: every row that could take one.
    assert out["vector_rows"] == {"tokens": 2, "bytes": 7, "nats": 8.0, "charge_nats": 0.0}
    assert out["fallback_rows"] == {"tokens": 2, "bytes": 2, "nats": 3.0, "charge_nats": 0.0}
    assert out["special_rows"] == {"tokens": 1, "bytes": 0, "nats": 4.0, "charge_nats": 0.0}
    total = sum(c["nats"] for k, c in out.items() if k != "vector_rows")
    assert total == pytest.approx(nll.sum())


def test_row_classes_per_document_sum_to_the_split_totals() -> None:
    # Two documents: [EOD] 4 2 5 [EOD] 4 3 [EOD]; targets 4 2 5 0 | 4 3 0.
    rows = np.array([ROW_NO_KEY, ROW_NO_KEY, ROW_NO_KEY, ROW_NO_KEY, ROW_COVERED, ROW_UNCOVERED])
    ids = np.array([0, 4, 2, 5, 0, 4, 3, 0])
    nbytes = np.array([0, 3, 1, 4, 0, 3, 1, 0])
    charges = np.array([0.0, 0.5, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0])
    nll = np.arange(1.0, 8.0)
    per_doc = doc_row_classes(nll, ids, nbytes, charges, rows, (0, 1), eod_id=0)
    assert set(per_doc) == {"covered_rows", "uncovered_rows", "fallback_rows", "special_rows"}
    assert per_doc["covered_rows"] == {"tokens": [1, 1], "bytes": [3, 3], "nats": [1.0, 5.0],
                                       "charge_nats": [0.5, 0.25]}
    assert per_doc["uncovered_rows"]["nats"] == [3.0, 0.0]  # a document without the class
    assert per_doc["fallback_rows"]["bytes"] == [1, 1]
    assert per_doc["special_rows"]["tokens"] == [1, 1]
    totals = row_classes(nll, ids, nbytes, charges, rows, (0, 1))
    for cls, d in per_doc.items():
        for what, values in d.items():
            assert sum(values) == pytest.approx(totals[cls][what])


def test_scratch_records_the_rows_word2vec_trained_here_would_cover() -> None:
    # The partition a scratch arm records is its word2vec partner's: predicted from the
    # train counts, it must be exactly the rows a real Word2Vec run covers, at each setting.
    from embinit.config import InitConfig
    from embinit.run.init.initialization import vector_init
    from embinit.run.init.vectors import TokenSentences, train_word2vec

    vocab = ["<eod>", "a", "b", "A", "B", "Cc", "c\u001cd", "x", "never"]
    counts = {"a": 5, "b": 1, "A": 3, "B": 1, "Cc": 2, "c\u001cd": 5, "x": 2}
    rng = np.random.default_rng(0)
    body = rng.permutation([vocab.index(t) for t, n in counts.items() for _ in range(n)])
    ids = np.concatenate([[0], body[:9], [0], body[9:], [0]]).astype(np.uint16)
    token_counts = np.bincount(ids, minlength=len(vocab))
    keys = [None, *vocab[1:]]  # the EOD row takes no vector
    for min_count in (1, 2, 3, 4):  # at 4, "A" (3) is covered only through "a" (5)
        for lower in (True, False):
            cfg = InitConfig(name="word2vec", seed=0, epochs=1, workers=1, min_count=min_count,
                             lowercase_fallback=lower, min_coverage=0.0)
            kv = train_word2vec(TokenSentences(ids, vocab, 0), cfg, dim=8)
            real = vector_init(vocab, kv, 8, cfg, np.random.default_rng(0), vector_keys=keys)
            predicted = word2vec_covered(vocab, keys, token_counts, min_count, lower, eod_id=0)
            assert predicted.tolist() == real.from_vectors.tolist(), (min_count, lower)
    # min_count 2 with the lowercase fallback: "B" (seen once) takes "b"'s vector only if
    # "b" is known, which it is not; "A" is known itself; the whitespace key never is.
    got = word2vec_covered(vocab, keys, token_counts, 2, True, eod_id=0)
    assert got.tolist() == [False, True, False, True, False, True, False, True, False]
    assert word2vec_covered(vocab, keys, token_counts, 4, True, 0)[3]
    assert not word2vec_covered(vocab, keys, token_counts, 4, False, 0)[3]
