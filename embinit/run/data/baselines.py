"""The n-gram baselines of a token stream: a stage after the token cache, cached by content.

Every arm on the same token stream (the same token cache and train fraction) shares one
entry: interpolated Kneser–Ney models (`embinit.run.ngram`) of orders 2–5, counted on the
train stream the arm trains on and scored on every held-out target, summed per document
exactly as the GPT's final evaluation sums its losses (`per_document`), so the report sets
them beside the arms on the same documents and bytes. The entry is one JSON file, written
atomically under a build lock and checked against the stream before it is reused.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from embinit.run.data.cache import TokenCache
from embinit.run.data.locking import entry_lock
from embinit.run.ngram import fit_kneser_ney_orders
from embinit.run.train.evaluate import per_document
from embinit.storage import atomic_write_json, read_json, stable_hash

log = logging.getLogger(__name__)

# Bump when the model, its discounts or the entry's layout change.
NGRAM_FORMAT = 1
NGRAM_ORDERS = (2, 3, 4, 5)
HELDOUT = ("val", "test")
METHOD = ("interpolated Kneser-Ney, one discount per order (Ney: n1 / (n1 + 2 n2)), the "
          "unigram level interpolated with uniform over the vocabulary")


def baselines_path(cache_root: Path, cache: TokenCache,
                   orders: tuple[int, ...] = NGRAM_ORDERS) -> Path:
    key = stable_hash({"format": NGRAM_FORMAT, "tokens": cache.key, "orders": list(orders)})
    return Path(cache_root) / "baselines" / key / "ngram.json"


def _valid(entry: Any, cache: TokenCache, orders: tuple[int, ...]) -> bool:
    """The entry belongs to this stream: every order, and one value per held-out document."""
    try:
        if entry["format"] != NGRAM_FORMAT or entry["tokens"] != cache.key:
            return False
        n_docs = {s: int(np.count_nonzero(np.asarray(cache.splits[s].ids[:-1]) == cache.eod_id))
                  for s in HELDOUT}
        return all(len(entry["orders"][str(n)][s]["doc_nats"]) == n_docs[s]
                   for n in orders for s in HELDOUT)
    except (KeyError, TypeError):
        return False


def compute_baselines(cache: TokenCache, orders: tuple[int, ...] = NGRAM_ORDERS
                      ) -> dict[str, Any]:
    """summary `baselines.ngram` for a token stream (pure given the arrays)."""
    streams = {s: np.asarray(cache.splits[s].ids) for s in HELDOUT}
    train = np.asarray(cache.splits["train"].ids)
    models = fit_kneser_ney_orders(train, orders, cache.vocab_size, cache.eod_id)
    out: dict[str, Any] = {}
    for n, model in models.items():
        nats = {s: model.target_nats(ids) for s, ids in streams.items()}
        out[str(n)] = {
            s: {"doc_nats": [float(x) for x in per_document(nats[s], streams[s], cache.eod_id)],
                "nats": float(np.sum(nats[s]))}
            for s in HELDOUT}
        out[str(n)]["discounts"] = [float(d) for d in model.discounts]
    return {"format": NGRAM_FORMAT, "tokens": cache.key, "method": METHOD,
            "train_tokens": int(len(train)), "vocab_size": int(cache.vocab_size),
            "orders": out}


def build_or_load_baselines(cache: TokenCache, cache_root: Path,
                            orders: tuple[int, ...] = NGRAM_ORDERS) -> dict[str, Any]:
    """The stream's n-gram baselines, built once and shared by every arm on it."""
    path = baselines_path(cache_root, cache, orders)
    with entry_lock(path.parent, "n-gram baselines"):
        if path.exists():
            try:
                entry = read_json(path)
            except (ValueError, OSError):
                entry = None
            if _valid(entry, cache, orders):
                return entry
            log.warning("n-gram baselines %s do not match the token stream: rebuilding", path)
        t0 = time.perf_counter()
        entry = compute_baselines(cache, orders)
        atomic_write_json(path, entry)
        log.info("n-gram baselines (orders %s) on %d train tokens in %.1fs", ",".join(
            map(str, orders)), entry["train_tokens"], time.perf_counter() - t0)
    return entry


__all__ = ["NGRAM_FORMAT", "NGRAM_ORDERS", "baselines_path", "build_or_load_baselines",
           "compute_baselines"]
