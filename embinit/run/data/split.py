"""Split stage: assign each document to train, val or test, before any tokenizer sees data.

A document's split is a pure function of (seed, doc_id): sha256 of both, read as a number in
[0, 1). It does not depend on document order or on the other documents, so it streams, and
every arm (tokenizer x initialization) sees exactly the same documents in each split.
Only train documents are ever used to fit anything (tokenizers, Word2Vec, spelling model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from embinit.config import DataConfig
from embinit.errors import DataError
from embinit.run.data.corpus import Corpus, Document

SPLITS = ("train", "val", "test")


def split_unit(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) determined by (seed, doc_id); sha256, not the salted hash()."""
    digest = hashlib.sha256(f"{seed}\x00{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(doc_id: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """"train", "val" or "test": test takes [0, test), val [test, test + val), train the rest."""
    u = split_unit(doc_id, seed)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


@dataclass(frozen=True)
class SplitAssigner:
    """`assign_split` with the config read once: a DictConfig field read costs more than the
    hash, and a corpus pass assigns every document."""

    seed: int
    val_fraction: float
    test_fraction: float

    @classmethod
    def of(cls, cfg: DataConfig) -> SplitAssigner:
        return cls(int(cfg.split_seed), float(cfg.val_fraction), float(cfg.test_fraction))

    def __call__(self, doc_id: str) -> str:
        return assign_split(doc_id, self.seed, self.val_fraction, self.test_fraction)


def empty_split_error(split: str, n_docs: int, cfg: DataConfig) -> DataError:
    return DataError(
        f"the {split} split is empty: {n_docs} documents are too few for "
        f"data.val_fraction={cfg.val_fraction} and data.test_fraction={cfg.test_fraction} "
        f"(data.split_seed={cfg.split_seed}); add documents, raise the fraction, or try another "
        "data.split_seed")


def iter_split(corpus: Corpus, split: str, cfg: DataConfig) -> Iterator[Document]:
    """Stream the documents of one split, in corpus order. An empty split is a DataError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n_seen = n_kept = 0
    assign = SplitAssigner.of(cfg)
    for doc in corpus:
        n_seen += 1
        if assign(doc.doc_id) == split:
            n_kept += 1
            yield doc
    if n_kept == 0:
        raise empty_split_error(split, n_seen, cfg)


def _split_totals(corpus: Corpus, cfg: DataConfig) -> tuple[dict[str, int], dict[str, int]]:
    docs = dict.fromkeys(SPLITS, 0)
    nbytes = dict.fromkeys(SPLITS, 0)
    assign = SplitAssigner.of(cfg)
    for doc in corpus:
        s = assign(doc.doc_id)
        docs[s] += 1
        nbytes[s] += len(doc.text.encode("utf-8"))
    for s in SPLITS:
        if docs[s] == 0:
            raise empty_split_error(s, sum(docs.values()), cfg)
    return docs, nbytes


def split_doc_counts(corpus: Corpus, cfg: DataConfig) -> dict[str, int]:
    """Documents per split (one pass)."""
    return _split_totals(corpus, cfg)[0]


def split_byte_counts(corpus: Corpus, cfg: DataConfig) -> dict[str, int]:
    """UTF-8 bytes of document text per split (one pass): the denominators of bits per byte."""
    return _split_totals(corpus, cfg)[1]
