"""A data-size regime: train on a fraction of the train split's documents.

The tokenizer, the vocabulary and the val/test streams stay those of the full split, so
arms at different data sizes differ only in how much text they train on (and Word2Vec,
trained on the same train stream, reads the same subset: the subset changes the token
cache's key, which keys the vectors). Documents are taken in a fixed seeded random order
(salted by data.split_seed, not the run's seed) until the fraction of the bytes is reached,
so subsets are nested (the 10% documents are among the 30% ones) and do not follow the
corpus's own order (an ordered corpus would otherwise give the small subsets another topic
mix than the hash-split val/test). The kept documents stay in stream order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from embinit.errors import ConfigError
from embinit.run.data.cache import TokenCache, TokenSplit
from embinit.storage import stable_hash


def document_bounds(ids: np.ndarray, eod_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the documents of a stream doc, EOD, doc, EOD, ...; an end includes
    the document's EOD (a last document without one ends at len(ids))."""
    ends = np.flatnonzero(np.asarray(ids) == eod_id) + 1
    if len(ends) == 0 or ends[-1] != len(ids):
        ends = np.append(ends, len(ids))
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return starts, ends.astype(np.int64)


def select_documents(doc_bytes: np.ndarray, fraction: float, salt: int) -> np.ndarray:
    """Sorted indices of the documents kept: a seeded random order, cut as soon as the kept
    documents hold >= fraction of the bytes. Nested in `fraction` for a fixed salt."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data.train_fraction={fraction} must be in (0, 1]")
    n = len(doc_bytes)
    if fraction >= 1.0 or n == 0:
        return np.arange(n)
    order = np.random.default_rng(salt).permutation(n)
    cum = np.cumsum(np.asarray(doc_bytes, dtype=np.int64)[order])
    k = int(np.searchsorted(cum, fraction * cum[-1], side="left")) + 1
    return np.sort(order[:min(k, n)])


def train_subset(split: TokenSplit, eod_id: int, fraction: float, salt: int) -> TokenSplit:
    """The documents `select_documents` keeps, in stream order, with the counts recomputed.

    Counts that need the text (OOV words, spelling costs) are scaled by the share of text
    tokens kept: they only describe the training stream, never enter a metric.
    """
    starts, ends = document_bounds(split.ids, eod_id)
    nb = np.asarray(split.nbytes, dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(nb)])
    keep = select_documents(cum[ends] - cum[starts], fraction, salt)
    if len(keep) == len(starts):
        return split

    def cut(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[s:e] for s, e in zip(starts[keep], ends[keep], strict=True)])

    ids, nbytes = cut(split.ids), cut(split.nbytes)
    n_eod = int(np.count_nonzero(ids == eod_id))
    s = split.stats
    n_text = len(ids) - n_eod
    share = n_text / s.n_text_tokens if s.n_text_tokens else 0.0
    stats = dataclasses.replace(
        s,
        n_docs=len(keep),
        n_bytes=int(nbytes.astype(np.int64).sum()),
        n_tokens=len(ids),
        n_targets=max(len(ids) - 1, 0),
        n_text_tokens=n_text,
        n_unk=round(s.n_unk * share),
        unk_bytes=round(s.unk_bytes * share),
        unk_spelling_nats=s.unk_spelling_nats * share,
        unk_spelling_nats_ngram=s.unk_spelling_nats_ngram * share,
        n_gaps=round(s.n_gaps * share),
        layout_nats=s.layout_nats * share,
        n_words=_scaled(s.n_words, share),
        n_spelled_words=_scaled(s.n_spelled_words, share),
        spelled_bytes=_scaled(s.spelled_bytes, share),
    )
    charges = cut(split.charges) if split.charges is not None else None
    return TokenSplit(ids=ids, nbytes=nbytes, stats=stats, charges=charges)


def _scaled(count: int | None, share: float) -> int | None:
    return None if count is None else round(count * share)  # None: not counted


def with_train_fraction(cache: TokenCache, fraction: float, salt: int) -> TokenCache:
    """The cache with train cut to `fraction` of its documents (val and test untouched) and
    a key of its own, so what is trained on the stream (Word2Vec) is cached per subset."""
    if fraction >= 1.0:
        return cache
    train = train_subset(cache.splits["train"], cache.eod_id, fraction, salt)
    key = stable_hash({"tokens": cache.key, "train_fraction": float(fraction),
                       "salt": int(salt), "train_tokens": int(len(train.ids))})
    return dataclasses.replace(cache, key=key, splits={**cache.splits, "train": train})
