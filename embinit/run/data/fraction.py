"""A data-size regime: train on the first fraction of the train split's documents.

The tokenizer, the vocabulary and the val/test streams stay those of the full split, so
arms at different data sizes differ only in how much text they train on (and Word2Vec,
trained on the same train stream, reads the same subset). Prefixes are nested: the 10%
stream is the start of the 30% one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from embinit.errors import ConfigError
from embinit.run.data.cache import TokenSplit


def prefix_end(ids: np.ndarray, nbytes: np.ndarray, eod_id: int, fraction: float) -> int:
    """Stream length of the shortest whole-document prefix holding >= fraction of the bytes.

    Documents end with an EOD token (the stream is doc, EOD, doc, EOD, ...); the returned
    end includes that EOD. fraction=1 returns len(ids).
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data.train_fraction={fraction} must be in (0, 1]")
    if fraction >= 1.0:
        return len(ids)
    ends = np.flatnonzero(np.asarray(ids) == eod_id) + 1  # exclusive ends of documents
    if len(ends) == 0 or ends[-1] != len(ids):
        ends = np.append(ends, len(ids))  # a last document without its EOD
    cum = np.cumsum(np.asarray(nbytes, dtype=np.int64))
    total = int(cum[-1]) if len(cum) else 0
    bytes_at_end = cum[ends - 1]
    k = int(np.searchsorted(bytes_at_end, fraction * total, side="left"))
    return int(ends[min(k, len(ends) - 1)])


def train_prefix(split: TokenSplit, eod_id: int, fraction: float) -> TokenSplit:
    """The first `fraction` of a split (whole documents), with its counts recomputed.

    Counts that need the text (types, OOV words, spelling costs) are scaled by the share
    of text tokens kept: they only describe the training stream, never enter a metric.
    """
    end = prefix_end(split.ids, split.nbytes, eod_id, fraction)
    if end == len(split.ids):
        return split
    ids, nbytes = split.ids[:end], split.nbytes[:end]
    n_eod = int(np.count_nonzero(np.asarray(ids) == eod_id))
    s = split.stats
    n_text = end - n_eod
    share = n_text / s.n_text_tokens if s.n_text_tokens else 0.0
    stats = dataclasses.replace(
        s,
        n_docs=n_eod,
        n_bytes=int(np.asarray(nbytes, dtype=np.int64).sum()),
        n_tokens=end,
        n_targets=max(end - 1, 0),
        n_text_tokens=n_text,
        n_unk=round(s.n_unk * share),
        unk_bytes=round(s.unk_bytes * share),
        unk_spelling_nats=s.unk_spelling_nats * share,
        unk_spelling_nats_ngram=s.unk_spelling_nats_ngram * share,
        n_gaps=round(s.n_gaps * share),
        layout_nats=s.layout_nats * share,
        n_words=round(s.n_words * share),
        n_spelled_words=round(s.n_spelled_words * share),
        spelled_bytes=round(s.spelled_bytes * share),
    )
    charges = split.charges[:end] if split.charges is not None else None
    return TokenSplit(ids=ids, nbytes=nbytes, stats=stats, charges=charges)


def with_train_fraction(splits: dict[str, TokenSplit], eod_id: int,
                        fraction: float) -> dict[str, TokenSplit]:
    """The splits with train cut to its first `fraction` (val and test untouched)."""
    if fraction >= 1.0:
        return splits
    return {**splits, "train": train_prefix(splits["train"], eod_id, fraction)}
