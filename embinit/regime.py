"""Regime coordinates: where a run sits between a head start and the seed's model.

A verdict about token-embedding initialization depends on how far training got. The same
arms compared after 0.4 tokens per non-embedding parameter and after 35 answer different
questions (pretrained-embedding gains are largest early and with little data: Kocmi & Bojar
2017; Qi et al. 2018). These functions turn a run's counts into coordinates that say which
question it answers, and give the seed's own coordinates (GPT-2 small, BPE 50,257 or 100k
words, 300M and 3B tokens) to read them against. Pure functions, torch-free: the producer
records them (summary `regime`), the report reads them back and prints the seed's beside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from embinit.config import ModelConfig
from embinit.params import param_breakdown

# The seed's question: a ~100M GPT (GPT-2 small's shape) on hundreds of millions to billions
# of tokens, with GPT-2's BPE or a 100k-word vocabulary.
SEED_MODEL = ModelConfig(name="gpt2_small", n_layer=12, n_head=12, d_model=768, block_size=1024)
SEED_VOCABS = {"bpe": 50_257, "word": 100_000}
SEED_TOKENS = (300e6, 3e9)
# Repeating data beyond about 4 epochs is no longer nearly as good as fresh data
# (Muennighoff et al. 2023): a coordinate past it overstates the run's effective data.
FRESH_EPOCHS = 4.0


def row_occurrences(train_token_counts: np.ndarray, epochs: float) -> np.ndarray:
    """Expected training occurrences of each vocabulary row: its count in the train stream
    times the epochs trained (tokens seen / train tokens). Byte, special and never-seen rows
    are rows too: they take an embedding like any other."""
    counts = np.asarray(train_token_counts, dtype=np.float64)
    if epochs < 0 or not np.isfinite(epochs):
        raise ValueError(f"epochs must be a finite non-negative number, got {epochs!r}")
    return counts * float(epochs)


def regime_coordinates(params: Mapping[str, int], tokens_seen: int,
                       train_token_counts: np.ndarray,
                       spelled_rate: float | None = None) -> dict[str, Any]:
    """summary `regime`: the run's coordinates.

    `params` is `param_breakdown`'s dict, `tokens_seen` the tokens trained on (all epochs),
    `train_token_counts` the count of each row in the train stream, `spelled_rate` the share
    of held-out words that fall outside the vocabulary (spelled in bytes, or `<unk>`).
    """
    counts = np.asarray(train_token_counts, dtype=np.float64)
    train_tokens = float(counts.sum())
    epochs = tokens_seen / train_tokens if train_tokens else 0.0
    occ = row_occurrences(counts, epochs)
    total, embedding = int(params["total"]), int(params["embedding"]) + int(params["output_head"])
    non_embedding = int(params["non_embedding"])
    return {
        "tokens_seen": int(tokens_seen),
        "epochs": epochs,
        "tokens_per_param": tokens_seen / total,
        "tokens_per_nonembedding_param": tokens_seen / non_embedding,
        "embedding_share": embedding / total,
        "vocab_rows": int(len(counts)),
        "row_occurrences_median": float(np.median(occ)) if len(occ) else 0.0,
        "row_occurrences_p10": float(np.percentile(occ, 10)) if len(occ) else 0.0,
        "row_occurrences_mean": float(occ.mean()) if len(occ) else 0.0,
        "rows_never_seen": float(np.mean(counts == 0)) if len(counts) else 0.0,
        "rows_seen_under_10": float(np.mean(occ < 10)) if len(occ) else 0.0,
        "spelled_word_rate": None if spelled_rate is None or not np.isfinite(spelled_rate)
        else float(spelled_rate),
        "beyond_fresh_epochs": epochs > FRESH_EPOCHS,
    }


def seed_coordinates() -> list[dict[str, Any]]:
    """The seed's regime: GPT-2 small (tied) with each seed vocabulary at 300M and 3B tokens.

    Only what is exact without the seed's corpus: tokens per (non-embedding) parameter, the
    embedding share and the mean occurrences per row (tokens / V); a row's median depends on
    the corpus's frequency curve, which the seed does not fix.
    """
    out = []
    for vocab, v in SEED_VOCABS.items():
        p = param_breakdown(SEED_MODEL, v)
        for tokens in SEED_TOKENS:
            out.append({
                "vocab": vocab, "vocab_size": v, "params": p["total"], "tokens": tokens,
                "tokens_per_param": tokens / p["total"],
                "tokens_per_nonembedding_param": tokens / p["non_embedding"],
                "embedding_share": (p["embedding"] + p["output_head"]) / p["total"],
                "row_occurrences_mean": tokens / v,
            })
    return out


__all__ = ["FRESH_EPOCHS", "SEED_MODEL", "SEED_TOKENS", "SEED_VOCABS", "regime_coordinates",
           "row_occurrences", "seed_coordinates"]
