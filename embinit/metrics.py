"""Tokenizer-independent metrics: bits per byte and the cost of spelling out `<unk>`.

Per-token loss is not comparable across tokenizers; bits per byte is. A closed word-level
model that predicts `<unk>` gets the bytes of the unknown word for the price of one
token, so the OOV-adjusted figure also charges each `<unk>` target the cost of
spelling the word it replaced, under a speller fitted on the training split: the
byte unigram `SpellingModel` (a loose charge), or the order-5 byte n-gram
`NgramSpeller` (a tighter one). Either is a proper distribution over byte strings, so
either charge gives an upper bound on what an open-vocabulary model of the same text
would have to pay.
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


EOW = 256  # end-of-word, as a predicted symbol
_BOW = 256  # beginning-of-word padding, as a context symbol (a context never holds EOW)
_BASE = 257  # context symbols are 0..256, so a context is a base-257 number


def _spell_positions(words: list[str], order: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Padded symbol stream of ``words`` and where its predictions are.

    Each word becomes ``[BOW] * (order - 1) + its UTF-8 bytes + [EOW]``, all concatenated.
    Returns (stream, positions of the predicted symbols, word index of each position): a
    word of n bytes has n + 1 predictions, and the order - 1 symbols before each one (its
    context) lie inside the word's own padded segment.
    """
    encoded = [w.encode("utf-8") for w in words]
    lens = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    seg = lens + order  # pad + bytes + EOW
    seg_start = np.cumsum(seg) - seg
    stream = np.full(int(seg.sum()), _BOW, dtype=np.int64)
    word_of_byte = np.repeat(np.arange(len(words)), lens)
    byte_start = np.cumsum(lens) - lens
    within = np.arange(int(lens.sum())) - np.repeat(byte_start, lens)
    stream[seg_start[word_of_byte] + order - 1 + within] = np.frombuffer(
        b"".join(encoded), dtype=np.uint8)
    stream[seg_start + seg - 1] = EOW
    n_pred = lens + 1
    word_of_pred = np.repeat(np.arange(len(words)), n_pred)
    pred_start = np.cumsum(n_pred) - n_pred
    offset = np.arange(int(n_pred.sum())) - np.repeat(pred_start, n_pred)
    positions = seg_start[word_of_pred] + order - 1 + offset
    return stream, positions, word_of_pred


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == q] for each query (keys sorted, unique); 0 where a query is absent."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.float64)
    idx = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[idx] == queries, values[idx], 0.0)


@dataclass(frozen=True, eq=False)
class NgramSpeller:
    """Byte n-gram model of word spellings, interpolated Witten-Bell smoothing.

    A word is its UTF-8 bytes then an end-of-word symbol (257 outcomes per step), each
    predicted from up to ``order - 1`` preceding symbols, padded with a beginning-of-word
    symbol. With h_k the last k symbols (k = 0 .. order-1) and, for the context h_k seen
    in training, c(h_k) its count, c(h_k, s) that of s after it and T(h_k) the number of
    distinct symbols seen after it (Witten & Bell 1991; interpolated form as in Chen &
    Goodman 1998, sec. 2.4):

        P_k(s | h_k) = (c(h_k, s) + T(h_k) P_{k-1}(s | h_{k-1})) / (c(h_k) + T(h_k))
        P_k(s | h_k) = P_{k-1}(s | h_{k-1})          if h_k was never seen
        P_{-1}(s)    = 1 / 257

    Each level mixes a distribution with another that sums to 1, so every P_k sums to 1
    over the 257 outcomes in every context, and every word has a finite cost. With no
    training words it is the uniform model (ln 257 nats per symbol).

    Counts are kept as sorted arrays of integer codes, so pricing many words is a few
    vectorised searches.
    """

    order: int
    ctx_keys: tuple[np.ndarray, ...]  # per context length k: sorted codes of seen contexts
    ctx_totals: tuple[np.ndarray, ...]  # c(h)
    ctx_types: tuple[np.ndarray, ...]  # T(h)
    pair_keys: tuple[np.ndarray, ...]  # sorted codes of (context, symbol): h * 257 + s
    pair_counts: tuple[np.ndarray, ...]  # c(h, s)

    @classmethod
    def fit(cls, words: Iterable[str] | Mapping[str, int], order: int = 5) -> NgramSpeller:
        """Fit on training words: an iterable (each occurrence once) or word -> count."""
        if order < 1:
            raise ValueError("order must be >= 1")
        if isinstance(words, Mapping):
            items = [(w, c) for w, c in words.items() if c > 0]
        else:
            items = list(Counter(words).items())
        stream, pos, word_of = _spell_positions([w for w, _ in items], order)
        weight = np.array([c for _, c in items], dtype=np.float64)[word_of]
        sym = stream[pos]
        code = np.zeros(len(pos), dtype=np.int64)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "ctx_keys", "ctx_totals", "ctx_types", "pair_keys", "pair_counts")}
        for k in range(order):
            if k:
                code = code + stream[pos - k] * _BASE ** (k - 1)
            pair, inverse = np.unique(code * _BASE + sym, return_inverse=True)
            counts = np.bincount(inverse.ravel(), weights=weight, minlength=len(pair))
            ctx, first, n_types = np.unique(pair // _BASE, return_index=True,
                                            return_counts=True)
            totals = np.add.reduceat(counts, first) if len(first) else counts[:0]
            parts["ctx_keys"].append(ctx)
            parts["ctx_totals"].append(totals)
            parts["ctx_types"].append(n_types.astype(np.float64))
            parts["pair_keys"].append(pair)
            parts["pair_counts"].append(counts)
        return cls(order=order, **{k: tuple(v) for k, v in parts.items()})

    def _probs(self, contexts: list[np.ndarray], sym: np.ndarray) -> np.ndarray:
        """P(sym | context) per query; contexts[k] holds the length-k context codes."""
        p = np.full(len(sym), 1.0 / N_SYMBOLS)
        for k in range(self.order):
            total = _lookup(self.ctx_keys[k], self.ctx_totals[k], contexts[k])
            types = _lookup(self.ctx_keys[k], self.ctx_types[k], contexts[k])
            pair = _lookup(self.pair_keys[k], self.pair_counts[k], contexts[k] * _BASE + sym)
            seen = total > 0
            p = np.where(seen, (pair + types * p) / np.where(seen, total + types, 1.0), p)
        return p

    def costs(self, words: list[str]) -> np.ndarray:
        """Nats to spell each word then end it (one vectorised pass over all of them)."""
        if not words:
            return np.zeros(0, dtype=np.float64)
        stream, pos, word_of = _spell_positions(list(words), self.order)
        contexts = [np.zeros(len(pos), dtype=np.int64)]
        for k in range(1, self.order):
            contexts.append(contexts[-1] + stream[pos - k] * _BASE ** (k - 1))
        nll = -np.log(self._probs(contexts, stream[pos]))
        return np.bincount(word_of, weights=nll, minlength=len(words))

    def cost(self, word: str) -> float:
        """Nats to spell ``word`` then end it."""
        return float(self.costs([word])[0])

    def next_log_probs(self, prefix: str | bytes) -> np.ndarray:
        """ln P(s | the word so far is ``prefix``) for all 257 symbols (index 256 = EOW)."""
        raw = prefix.encode("utf-8") if isinstance(prefix, str) else bytes(prefix)
        history = [_BOW] * (self.order - 1) + list(raw)
        contexts = []
        code = 0
        for k in range(self.order):
            if k:
                code += history[-k] * _BASE ** (k - 1)
            contexts.append(np.full(N_SYMBOLS, code, dtype=np.int64))
        return np.log(self._probs(contexts, np.arange(N_SYMBOLS, dtype=np.int64)))


# --- the whitespace a word-level tokenizer drops ---------------------------------------------

WORD, PUNCT, EDGE = "w", "p", "^"  # token classes: starts with a word character / not / doc edge


def token_class(surface: str | None) -> str:
    """Context class of a token next to a gap: word-like, punctuation-like, or a document edge."""
    if surface is None:
        return EDGE
    return WORD if surface[:1].isalnum() or surface[:1] == "_" else PUNCT


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


_CLASSES = (WORD, PUNCT, EDGE)
_ASCII_WORD = np.array([chr(c).isalnum() or chr(c) == "_" for c in range(128)])
_ONE_CHAR_GAPS = 0x110000  # gap codes: 0 empty, 1 + code point for one character, then longer


def layout_event_index(text: str, offsets: np.ndarray) -> tuple[list[tuple[str, str]],
                                                                 np.ndarray]:
    """`layout_events` as its distinct events plus, per event, an index into them.

    ``offsets`` is the (n, 2) array of the tokens' character offsets. Equal to
    ``[events[i] for i in index] == layout_events(text, offsets)`` (tested), with the
    distinct events in order of first occurrence. In numpy: the token classes come from a
    lookup on each token's first code point and the one-character gaps from code points, so
    only the distinct events and the longer gaps are Python strings. The closed
    vocabulary's cache counts and prices gaps from it.
    """
    # Clipped to the text, as slicing it would be (tokenizer offsets never pass its end).
    offsets = np.minimum(np.asarray(offsets, dtype=np.int64).reshape(-1, 2), len(text))
    starts, ends = offsets[:, 0], offsets[:, 1]
    cp = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
    n = len(starts)
    # Token classes (0 word, 1 punctuation) from the first character; an empty token is
    # punctuation, as token_class("") is.
    first = np.full(n, -1, dtype=np.int64)
    nonempty = ends > starts
    first[nonempty] = cp[starts[nonempty]]
    word = np.zeros(n, dtype=bool)
    ascii_ = (first >= 0) & (first < 128)
    word[ascii_] = _ASCII_WORD[first[ascii_]]
    beyond = first >= 128
    if beyond.any():  # each distinct non-ASCII first character asked once
        chars, which = np.unique(first[beyond], return_inverse=True)
        word[beyond] = np.array([chr(c).isalnum() for c in chars.tolist()])[which.reshape(-1)]
    cls = np.where(word, 0, 1)
    edge = np.array([2])
    ctx = np.concatenate([edge, cls]) * 3 + np.concatenate([cls, edge])  # n + 1 gaps
    # Gap i runs from the end of token i-1 (0 for the first) to the start of token i (the
    # end of the text for the last); a slice running backwards is empty.
    lo = np.concatenate([[0], ends])
    hi = np.concatenate([starts, [len(text)]])
    length = np.maximum(hi - lo, 0)
    gap = np.zeros(n + 1, dtype=np.int64)
    one = length == 1
    gap[one] = 1 + cp[lo[one]]
    longer: dict[str, int] = {}
    for i in np.flatnonzero(length > 1):
        g = text[lo[i]:hi[i]]
        gap[i] = longer.setdefault(g, _ONE_CHAR_GAPS + 1 + len(longer))
    uniq, first_at, index = np.unique(gap * 9 + ctx, return_index=True, return_inverse=True)
    # Distinct events in order of first occurrence, as counting layout_events would insert
    # them: sums over the counts then run in the same order, to the last bit.
    order = np.argsort(first_at, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    uniq, index = uniq[order], rank[index.reshape(-1)]
    by_code = {code: g for g, code in longer.items()}
    events = []
    for key in uniq.tolist():
        code, c = divmod(key, 9)
        g = "" if code == 0 else chr(code - 1) if code <= _ONE_CHAR_GAPS else by_code[code]
        events.append((f"{_CLASSES[c // 3]}|{_CLASSES[c % 3]}", g))
    return events, index


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
