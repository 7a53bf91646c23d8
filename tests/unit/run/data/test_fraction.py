"""data.train_fraction: nested, seeded random subsets of whole train documents."""

import dataclasses

import numpy as np
import pytest

from embinit.errors import ConfigError
from embinit.run.data.accounting import SplitStats
from embinit.run.data.cache import TokenCache, TokenSplit
from embinit.run.data.fraction import (
    document_bounds,
    select_documents,
    train_subset,
    with_train_fraction,
)

EOD = 0
# Three documents of 10, 30 and 60 bytes, each followed by EOD (0 bytes).
IDS = np.array([5, 6, EOD, 7, 8, 9, EOD, 5, 5, 5, 5, EOD])
NBYTES = np.array([4, 6, 0, 10, 10, 10, 0, 15, 15, 15, 15, 0])
STATS = SplitStats(n_docs=3, n_bytes=100, n_tokens=12, n_targets=11, n_text_tokens=9,
                   n_words=9, n_spelled_words=3)


def test_document_bounds_include_each_eod() -> None:
    starts, ends = document_bounds(IDS, EOD)
    assert starts.tolist() == [0, 3, 7] and ends.tolist() == [3, 7, 12]
    starts, ends = document_bounds(IDS[:-1], EOD)  # a last document without its EOD
    assert ends.tolist() == [3, 7, 11]


def test_selection_reaches_the_fraction_is_nested_and_ignores_corpus_order() -> None:
    sizes = np.full(1000, 10)
    small, large = (select_documents(sizes, f, salt=0) for f in (0.1, 0.3))
    assert len(small) == 100 and len(large) == 300
    assert set(small) <= set(large)  # nested
    assert list(small) == sorted(small)  # kept in stream order
    assert small.max() > 500  # not the first documents of the corpus
    assert not np.array_equal(small, select_documents(sizes, 0.1, salt=1))
    assert np.array_equal(select_documents(sizes, 1.0, salt=0), np.arange(1000))
    with pytest.raises(ConfigError, match="train_fraction"):
        select_documents(sizes, 0.0, salt=0)


def test_train_subset_recounts_the_stream() -> None:
    split = TokenSplit(ids=IDS, nbytes=NBYTES, stats=STATS)
    keep = select_documents(np.array([10, 30, 60]), 0.3, salt=3)
    sub = train_subset(split, EOD, 0.3, salt=3)
    starts, ends = document_bounds(IDS, EOD)
    expect = np.concatenate([IDS[starts[k]:ends[k]] for k in keep])
    assert sub.ids.tolist() == expect.tolist()
    assert sub.stats.n_docs == len(keep) and sub.stats.n_bytes == int(NBYTES[
        np.concatenate([np.arange(starts[k], ends[k]) for k in keep])].sum())
    assert sub.stats.n_bytes >= 30 and sub.stats.n_tokens == len(expect)
    assert sub.stats.n_targets == len(expect) - 1
    assert train_subset(split, EOD, 1.0, salt=3) is split
    # Counts scale with the kept text tokens; a count that was never made stays None.
    share = (len(expect) - len(keep)) / STATS.n_text_tokens
    assert sub.stats.n_words == round(9 * share) and sub.stats.n_spelled_words == round(3 * share)
    uncounted = dataclasses.replace(STATS, n_words=None, n_spelled_words=None, spelled_bytes=None)
    sub = train_subset(TokenSplit(ids=IDS, nbytes=NBYTES, stats=uncounted), EOD, 0.3, salt=3)
    assert (sub.stats.n_words, sub.stats.n_spelled_words, sub.stats.spelled_bytes) == (
        None, None, None)


def test_a_subset_has_its_own_cache_key() -> None:
    # Word2Vec vectors are keyed by the token cache's key: a subset must not reuse vectors
    # trained on the whole split (or on another subset).
    split = TokenSplit(ids=IDS, nbytes=NBYTES, stats=STATS)
    cache = TokenCache(key="k", dir=None, vocab_size=10, eod_id=EOD, unk_id=1, reused=True,
                       splits={"train": split, "val": split, "test": split},
                       word_oov_curve=[], spelling_counts=np.zeros(257))
    a, b = (with_train_fraction(cache, f, salt=0) for f in (0.3, 0.6))
    assert len({cache.key, a.key, b.key}) == 3
    assert a.splits["val"] is split and with_train_fraction(cache, 1.0, 0) is cache
