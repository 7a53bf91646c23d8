"""Tokenizer-independent metrics: bits per byte and the cost of spelling out `<unk>`.

Per-token loss is not comparable across tokenizers; bits per byte is. A word-level
model that predicts `<unk>` gets the bytes of the unknown word for the price of one
token, so the OOV-adjusted figure also charges each `<unk>` target the cost of
spelling the word it replaced under a byte-level unigram model fitted on the
training split.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
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


# --- the whitespace a word-level tokenizer drops ---------------------------------------------

WORD, OTHER, EDGE = "w", "p", "^"  # token classes: starts with a word character / not / doc edge


def token_class(surface: str | None) -> str:
    """Context class of a token next to a gap: word-like, punctuation-like, or a document edge."""
    if surface is None:
        return EDGE
    return WORD if surface[:1].isalnum() or surface[:1] == "_" else OTHER


def layout_events(text: str, offsets: list[tuple[int, int]]) -> list[tuple[str, str]]:
    """(context, gap) for every gap around the tokens of one document.

    A word-level tokenizer keeps the tokens but not the text between them (spaces,
    newlines, or nothing before punctuation). The gaps, in order, plus the tokens
    reconstruct the document exactly; the context is the classes of the tokens on both
    sides of the gap, e.g. "w|p" for the (usually empty) gap between a word and a comma.
    """
    events: list[tuple[str, str]] = []
    prev_end, prev_surface = 0, None
    for start, end in offsets:
        surface = text[start:end]
        events.append((f"{token_class(prev_surface)}|{token_class(surface)}", text[prev_end:start]))
        prev_end, prev_surface = end, surface
    events.append((f"{token_class(prev_surface)}|{EDGE}", text[prev_end:]))
    return events


@dataclass(frozen=True)
class LayoutModel:
    """Prices the gaps between word-level tokens: the bytes the word model never predicts.

    For each context c (classes of the neighbouring tokens) a unigram over gap strings,
    add-one smoothed with one extra "unseen gap" outcome:

        p(g | c) = (n(c, g) + 1) / (N_c + K_c + 1)        for the K_c gaps seen in c
        p(new | c) = 1 / (N_c + K_c + 1), then the gap is spelled with the SpellingModel

    fitted on the train split. Byte-level BPE keeps every byte inside its tokens, so it
    needs no such charge.
    """

    counts: dict[str, dict[str, int]]  # context -> gap -> count
    spelling: SpellingModel

    @classmethod
    def fit(cls, events: Iterable[tuple[str, str]], spelling: SpellingModel) -> LayoutModel:
        return cls.from_counts(Counter(events), spelling)

    @classmethod
    def from_counts(cls, event_counts: Mapping[tuple[str, str], int],
                    spelling: SpellingModel) -> LayoutModel:
        counts: dict[str, dict[str, int]] = {}
        for (ctx, gap), n in event_counts.items():
            counts.setdefault(ctx, {})[gap] = n
        return cls(counts=counts, spelling=spelling)

    def cost(self, ctx: str, gap: str) -> float:
        per = self.counts.get(ctx, {})
        denom = sum(per.values()) + len(per) + 1
        if gap in per:
            return -math.log((per[gap] + 1) / denom)
        return math.log(denom) + self.spelling.cost(gap)


def lossless_bpb(total_nats: float, unk_spelling_nats: float, layout_nats: float,
                 n_bytes: int) -> float:
    """bpb charging both the words behind `<unk>` and the dropped whitespace layout."""
    return bits_per_byte(total_nats + unk_spelling_nats + layout_nats, n_bytes)
