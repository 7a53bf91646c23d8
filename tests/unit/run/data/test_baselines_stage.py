"""The n-gram stage: one value per held-out document, aligned with the token cache's bytes,
cached per token stream and rebuilt when the entry does not match the stream."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from embinit.run.data.baselines import (
    baselines_path,
    build_or_load_baselines,
    compute_baselines,
)
from embinit.run.ngram import fit_kneser_ney_orders
from embinit.storage import atomic_write_json

EOD = 0


@dataclass
class _Split:
    ids: np.ndarray
    nbytes: np.ndarray


@dataclass
class _Cache:
    key: str
    vocab_size: int
    eod_id: int
    splits: dict = field(default_factory=dict)


def _stream(rng, n_docs, vocab):
    parts, nbytes = [np.array([EOD])], [np.array([0])]
    for _ in range(n_docs):
        doc = rng.integers(1, vocab, size=rng.integers(3, 30))
        parts += [doc, np.array([EOD])]
        nbytes += [rng.integers(1, 6, size=len(doc)), np.array([0])]
    return _Split(np.concatenate(parts).astype(np.uint16), np.concatenate(nbytes))


@pytest.fixture
def cache():
    rng = np.random.default_rng(3)
    return _Cache("k1", 40, EOD, {"train": _stream(rng, 60, 40), "val": _stream(rng, 7, 40),
                                  "test": _stream(rng, 5, 40)})


def _doc_bytes(split):
    """Bytes of each document, summed the slow way between EODs (targets after each EOD)."""
    out, cur = [], None
    for tok, b in zip(split.ids[1:], split.nbytes[1:], strict=True):
        cur = (cur or 0) + int(b)
        if tok == EOD:
            out.append(cur)
            cur = None
    return out


def test_one_value_per_document_matching_the_cache(cache):
    entry = compute_baselines(cache, orders=(2, 3))
    models = fit_kneser_ney_orders(cache.splits["train"].ids, (2, 3), 40, EOD)
    for split, n_docs in (("val", 7), ("test", 5)):
        assert len(_doc_bytes(cache.splits[split])) == n_docs
        for n in (2, 3):
            doc_nats = entry["orders"][str(n)][split]["doc_nats"]
            assert len(doc_nats) == n_docs  # aligned with the cache's per-document bytes
            nats = models[n].target_nats(cache.splits[split].ids)
            ends = np.flatnonzero(cache.splits[split].ids[1:] == EOD)
            slow = [float(nats[a + 1:b + 1].sum()) for a, b in
                    zip(np.r_[-1, ends[:-1]], ends, strict=True)]
            assert doc_nats == pytest.approx(slow, rel=1e-12)
            assert entry["orders"][str(n)][split]["nats"] == pytest.approx(nats.sum())
    assert entry["train_tokens"] == len(cache.splits["train"].ids)


def test_cached_per_stream_and_rebuilt_when_stale(cache, tmp_path):
    first = build_or_load_baselines(cache, tmp_path, orders=(2,))
    path = baselines_path(tmp_path, cache, orders=(2,))
    assert path.is_file()
    assert build_or_load_baselines(cache, tmp_path, orders=(2,)) == first
    damaged = dict(first, orders={"2": {"val": {"doc_nats": [1.0]}, "test": {"doc_nats": []}}})
    atomic_write_json(path, damaged)  # valid JSON, wrong shape: rebuilt, never used
    assert build_or_load_baselines(cache, tmp_path, orders=(2,)) == first
    other = _Cache("k2", cache.vocab_size, EOD, cache.splits)
    assert baselines_path(tmp_path, other, (2,)) != path  # another stream, another entry
