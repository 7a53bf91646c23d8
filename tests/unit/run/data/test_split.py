"""Split stage: hash-based, order-independent, seed-dependent, exact byte accounting."""

from __future__ import annotations

import random

import pytest

from embinit.config import DataConfig
from embinit.errors import DataError
from embinit.run.data.corpus import Corpus, Document
from embinit.run.data.split import (
    assign_split,
    iter_split,
    split_byte_counts,
    split_doc_counts,
    split_unit,
)

CFG = DataConfig(val_fraction=0.25, test_fraction=0.25, split_seed=0)


def test_assignment_is_pinned():
    # Pinned values: a change here silently reshuffles every cached split and result.
    got = {i: assign_split(i, 0, 0.25, 0.25) for i in ("doc0", "doc1", "doc2", "doc3", "doc12")}
    assert got == {"doc0": "train", "doc1": "train", "doc2": "val", "doc3": "val", "doc12": "test"}
    assert split_unit("doc0", 0) == pytest.approx(0.6764, abs=1e-4)


def test_assignment_deterministic_and_changes_with_seed():
    ids = [f"doc{i}" for i in range(1000)]
    a = [assign_split(i, 0, 0.1, 0.1) for i in ids]
    assert a == [assign_split(i, 0, 0.1, 0.1) for i in ids]
    b = [assign_split(i, 1, 0.1, 0.1) for i in ids]
    changed = sum(x != y for x, y in zip(a, b, strict=True))
    assert changed > 200  # ~ 1 - (0.8^2 + 0.1^2 + 0.1^2) = 34% expected


def test_fractions_respected_on_10000_ids():
    ids = [f"article-{i}" for i in range(10_000)]
    splits = [assign_split(i, 7, 0.1, 0.2) for i in ids]
    assert abs(splits.count("val") / 10_000 - 0.1) < 0.015
    assert abs(splits.count("test") / 10_000 - 0.2) < 0.015
    assert abs(splits.count("train") / 10_000 - 0.7) < 0.015


def corpus_of(texts: dict[str, str]) -> Corpus:
    return Corpus.from_documents(Document(k, v) for k, v in texts.items())


HAND = {"doc0": "héllo", "doc1": "漢字", "doc2": "abc", "doc3": "😀!", "doc12": "x y z"}


def test_iter_split_is_order_independent_and_partitions():
    forward = corpus_of(HAND)
    backward = corpus_of(dict(reversed(list(HAND.items()))))
    for split in ("train", "val", "test"):
        f = {d.doc_id for d in iter_split(forward, split, CFG)}
        b = {d.doc_id for d in iter_split(backward, split, CFG)}
        assert f == b
    assert [d.doc_id for d in iter_split(forward, "train", CFG)] == ["doc0", "doc1"]
    assert [d.doc_id for d in iter_split(forward, "val", CFG)] == ["doc2", "doc3"]
    assert [d.doc_id for d in iter_split(forward, "test", CFG)] == ["doc12"]


def test_byte_and_doc_counts_exact():
    corpus = corpus_of(HAND)
    # héllo 6 + 漢字 6 | abc 3 + 😀! 5 | x y z 5
    assert split_byte_counts(corpus, CFG) == {"train": 12, "val": 8, "test": 5}
    assert split_doc_counts(corpus, CFG) == {"train": 2, "val": 2, "test": 1}


def test_empty_split_is_a_data_error():
    corpus = corpus_of({"doc0": "only one document"})
    with pytest.raises(DataError, match="val split is empty"):
        split_byte_counts(corpus, CFG)
    with pytest.raises(DataError, match="test split is empty"):
        list(iter_split(corpus, "test", CFG))


def test_split_of_a_document_does_not_depend_on_the_others():
    ids = [f"doc{i}" for i in range(200)]
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    docs = corpus_of({i: "text" for i in shuffled})
    val = {d.doc_id for d in iter_split(docs, "val", CFG)}
    assert val == {i for i in ids if assign_split(i, 0, 0.25, 0.25) == "val"}
