"""Tokenizer-independent metrics: bits per byte and the cost of spelling out `<unk>`.

Per-token loss is not comparable across tokenizers; bits per byte is. A word-level
model that predicts `<unk>` gets the bytes of the unknown word for the price of one
token, so the OOV-adjusted figure also charges each `<unk>` target the cost of
spelling the word it replaced under a byte-level unigram model fitted on the
training split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

LN2 = math.log(2.0)
N_SYMBOLS = 257  # 256 byte values + an end-of-word symbol


def bits_per_byte(total_nats: float, n_bytes: int) -> float:
    """bpb = total nats / (ln 2 * UTF-8 bytes of the evaluated text)."""
    if n_bytes <= 0:
        raise ValueError("bits_per_byte needs a positive byte count")
    return float(total_nats) / (LN2 * n_bytes)


def oov_adjusted_bpb(total_nats: float, unk_spelling_nats: float, n_bytes: int) -> float:
    """bpb after charging every `<unk>` target the nats needed to spell its word."""
    return bits_per_byte(total_nats + unk_spelling_nats, n_bytes)


@dataclass(frozen=True)
class SpellingModel:
    """Unigram model over UTF-8 bytes plus an end-of-word symbol, add-one smoothed.

    p(b) = (count(b) + 1) / (N + 257), where N counts every byte of every training
    word plus one end-of-word symbol per word. Every string has a finite cost, so an
    unknown word with characters never seen in training is still charged.
    """

    log_probs: np.ndarray  # shape (257,), natural log; index 256 is end-of-word

    @classmethod
    def fit(cls, words: Iterable[str]) -> SpellingModel:
        counts = np.zeros(N_SYMBOLS, dtype=np.int64)
        for w in words:
            counts[:256] += np.bincount(np.frombuffer(w.encode("utf-8"), dtype=np.uint8), minlength=256)
            counts[256] += 1
        return cls.from_counts(counts)

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> SpellingModel:
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (N_SYMBOLS,):
            raise ValueError(f"expected {N_SYMBOLS} symbol counts, got shape {counts.shape}")
        probs = (counts + 1.0) / (counts.sum() + N_SYMBOLS)
        return cls(log_probs=np.log(probs))

    def cost(self, word: str) -> float:
        """Nats to spell ``word`` then end it: -sum ln p(byte) - ln p(EOW)."""
        b = np.frombuffer(word.encode("utf-8"), dtype=np.uint8)
        return float(-(self.log_probs[b].sum() + self.log_probs[256]))
